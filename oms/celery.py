"""The Celery application; tasks are discovered in each app's tasks.py."""

import logging.config
import os

from celery import Celery, signals
from django.conf import settings

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "oms.settings")

app = Celery("oms")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.setup_logging.connect
def logging_use_django_config(**kwargs) -> None:
    """Workers and beat log through Django's LOGGING (one masked handler) instead of Celery's own handlers,
    which would write task results and errors, phone numbers included, unmasked. Level: DJANGO_LOG_LEVEL."""
    logging.config.dictConfig(settings.LOGGING)
