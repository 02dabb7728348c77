"""Shared abstract models (timestamps, history events) and the small project-wide tables (sequences, heartbeats)."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class TimeStampedModel(models.Model):
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        abstract = True


class NumberSequence(models.Model):
    """Counter used to number documents where the database has no native sequence (SQLite)."""

    name = models.CharField(_("name"), max_length=50, unique=True)
    last_value = models.BigIntegerField(_("last number given"), default=0)

    class Meta:
        verbose_name = _("number sequence")
        verbose_name_plural = _("number sequences")

    def __str__(self) -> str:
        return f"{self.name}={self.last_value}"


class WorkerHeartbeat(models.Model):
    """Last time each Celery worker ran the heartbeat task; the health endpoint reads it."""

    worker = models.CharField(_("worker"), max_length=200, unique=True)
    seen_at = models.DateTimeField(_("last seen"))

    class Meta:
        verbose_name = _("worker heartbeat")
        verbose_name_plural = _("worker heartbeats")

    def __str__(self) -> str:
        return self.worker


class Event(models.Model):
    """One line of a history table (OrderEvent, ShipmentEvent, …): who did what, when, from which state to which.

    A concrete event adds the foreign key to what it is the history of, its own ``type`` choices (the column
    stays 32 wide), its indexes, and ``class Meta(Event.Meta)``. Rows are written through
    ``oms.events.event_record`` so the actor is filled in the same way everywhere.
    """

    type = models.CharField(_("type"), max_length=32)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+", verbose_name=_("actor"))
    # Who acted when it was not a person: "system", "api", "channel", "carrier", ...
    actor_label = models.CharField(_("actor label"), max_length=64, blank=True, default="")
    from_status = models.CharField(_("from"), max_length=32, blank=True, default="")
    to_status = models.CharField(_("to"), max_length=32, blank=True, default="")
    reason = models.CharField(_("reason"), max_length=500, blank=True, default="")
    data = models.JSONField(_("data"), default=dict, blank=True)
    created_at = models.DateTimeField(_("time"), auto_now_add=True)

    class Meta:
        abstract = True
        ordering = ["created_at", "id"]

    @property
    def actor_display(self) -> str:
        if self.actor_id:
            return self.actor.get_username()
        return self.actor_label or "system"
