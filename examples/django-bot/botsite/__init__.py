"""A small WhatsApp bot built the way the incident's was: Django, Celery, settings-driven."""

# Celery's app is loaded with Django, so @shared_task binds to it (Celery's Django recipe).
from .celery import app as celery_app

__all__ = ["celery_app"]
