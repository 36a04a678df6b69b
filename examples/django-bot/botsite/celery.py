"""The Celery app, configured from Django's settings: every CELERY_* setting, the pool too."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "botsite.settings")

app = Celery("botsite")
# CELERY_WORKER_POOL in settings.py becomes worker_pool here: the pool is chosen by a
# setting, not by `-P` on the worker's command line (the incident's configuration).
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
