"""Django admin for the project-wide tables (sequences, worker heartbeats) and the read-only admin base."""

from django.contrib import admin

from oms.models import NumberSequence, WorkerHeartbeat


class ReadOnlyAdmin(admin.ModelAdmin):
    """Shown, never written here: the rows change only through their services (stock counters, the ledger,
    reservations, events, outbox rows). ``allow_delete`` lets an operator remove a row by hand."""

    allow_delete = False

    def get_readonly_fields(self, request, obj=None):
        own = list(super().get_readonly_fields(request, obj))
        return own + [field.name for field in self.model._meta.fields if field.name not in own]

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return self.allow_delete and super().has_delete_permission(request, obj)


@admin.register(NumberSequence)
class NumberSequenceAdmin(admin.ModelAdmin):
    list_display = ["name", "last_value"]


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin):
    list_display = ["worker", "seen_at"]
