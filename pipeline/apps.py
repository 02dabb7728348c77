"""App config of the pipeline layer (no models: it only orchestrates the domain apps' services)."""

from django.apps import AppConfig


class PipelineConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "pipeline"
    verbose_name = "Order pipeline"
