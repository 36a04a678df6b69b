"""Settings, from the environment as a twelve-factor deployment has them.

The harness gives each lane its broker, the mock Cloud API's URL, the business number,
token and app secret, and the fixtures schedule; the pool comes from CELERY_WORKER_POOL
when the lane sets it there (the settings-only trap), else from `-P` on the command line.
"""

import os

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-only-not-secret")
DEBUG = False
# In containers the mock posts statuses to the service's name: the compose file widens this.
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]").split(",")
INSTALLED_APPS = ["replies"]
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "botsite.urls"
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True
TIME_ZONE = "UTC"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "INFO"},
}

# -- the WhatsApp Cloud API ----------------------------------------------------------------
WHATSAPP_API_URL = os.environ.get("WHATSAPP_API_URL", "https://graph.facebook.com")
WHATSAPP_API_VERSION = os.environ.get("WHATSAPP_API_VERSION", "v21.0")
WHATSAPP_PHONE_NUMBER_ID = os.environ.get("WHATSAPP_PHONE_NUMBER_ID", "")
WHATSAPP_ACCESS_TOKEN = os.environ.get("WHATSAPP_ACCESS_TOKEN", "")
WHATSAPP_APP_SECRET = os.environ.get("WHATSAPP_APP_SECRET", "")
WHATSAPP_VERIFY_TOKEN = os.environ.get("WHATSAPP_VERIFY_TOKEN", "")

# -- the fixtures flow: one request, FIXTURES_PARTS replies FIXTURES_SPACING_S apart -------
FIXTURES_KEYWORD = "fixtures"
FIXTURES_PARTS = int(os.environ.get("FIXTURES_PARTS", "22"))
FIXTURES_SPACING_S = float(os.environ.get("FIXTURES_SPACING_S", "2.0"))

# -- Celery (read by botsite/celery.py under the CELERY namespace) --------------------------
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_TASK_QUEUE", "celery")
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# How long Redis holds a message a worker took and never acknowledged before it hands it
# out again (kombu's default: an hour).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": float(os.environ.get("CELERY_BROKER_VISIBILITY_TIMEOUT", "3600"))
}
# The incident's setting: the pool chosen here, never on the worker's command line.
CELERY_WORKER_POOL = os.environ.get("CELERY_WORKER_POOL", "prefork")
