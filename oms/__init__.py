"""Project package: settings, URLs, the Celery app and the shared base pieces every app builds on."""

from .celery import app as celery_app

__all__ = ("celery_app",)
