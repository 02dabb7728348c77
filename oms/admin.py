"""Django admin for the project-wide tables (sequences, worker heartbeats)."""

from django.contrib import admin

from oms.models import NumberSequence, WorkerHeartbeat


@admin.register(NumberSequence)
class NumberSequenceAdmin(admin.ModelAdmin):
    list_display = ["name", "last_value"]


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin):
    list_display = ["worker", "seen_at"]
