"""Printing models: thermal printers, the LAN print bridges that serve them, and print jobs with their states."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django_fsm import FSMField, FSMModelMixin, transition

from oms.models import TimeStampedModel


class PaperWidth(models.IntegerChoices):
    MM58 = 58, _("58 mm")
    MM80 = 80, _("80 mm")


class Transport(models.TextChoices):
    NETWORK = "network", _("Network (TCP 9100) from the server")
    BRIDGE = "bridge", _("Print bridge on the warehouse LAN")


class PrintBridge(TimeStampedModel):
    """An agent on a warehouse PC that pulls that warehouse's jobs; it proves itself with a token
    whose SHA-256 is all we keep."""

    name = models.CharField(_("name"), max_length=100)
    warehouse = models.ForeignKey("inventory.Warehouse", on_delete=models.CASCADE, related_name="print_bridges",
                                  verbose_name=_("warehouse"))
    token_hash = models.CharField(_("token hash"), max_length=64, unique=True)
    # The first characters of the token, so a person can tell tokens apart without seeing them.
    token_prefix = models.CharField(_("token starts with"), max_length=8)
    active = models.BooleanField(_("active"), default=True)
    last_seen_at = models.DateTimeField(_("last seen"), null=True, blank=True)

    class Meta:
        verbose_name = _("print bridge")
        verbose_name_plural = _("print bridges")
        ordering = ["warehouse_id", "name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.token_prefix}…)"


class Printer(TimeStampedModel):
    """A thermal printer in a warehouse, reached directly over TCP or through the warehouse's bridge."""

    code = models.SlugField(_("code"), max_length=50, unique=True)
    name = models.CharField(_("name"), max_length=100)
    warehouse = models.ForeignKey("inventory.Warehouse", on_delete=models.PROTECT, related_name="printers",
                                  verbose_name=_("warehouse"))
    paper_width = models.PositiveSmallIntegerField(_("paper width"), choices=PaperWidth.choices,
                                                   default=PaperWidth.MM80)
    transport = models.CharField(_("transport"), max_length=10, choices=Transport.choices, default=Transport.NETWORK)
    # For the network transport the server connects here; for a bridge, the bridge does (on its LAN).
    host = models.CharField(_("host"), max_length=255, default="127.0.0.1")
    port = models.PositiveIntegerField(_("port"), default=9100)
    active = models.BooleanField(_("active"), default=True)
    # Set when a send failed because the printer did not answer; cleared by the next success.
    offline_since = models.DateTimeField(_("off-line since"), null=True, blank=True)
    last_error = models.CharField(_("last error"), max_length=300, blank=True, default="")

    class Meta:
        verbose_name = _("printer")
        verbose_name_plural = _("printers")
        ordering = ["warehouse_id", "name"]

    def __str__(self) -> str:
        return self.name


class JobKind(models.TextChoices):
    LABEL = "label", _("Shipping label")
    PICK_LIST = "pick_list", _("Pick list")
    TEST = "test", _("Test page")


class JobStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    SENDING = "sending", _("Sending")
    PRINTED = "printed", _("Printed")
    FAILED = "failed", _("Failed")


class PrintJob(FSMModelMixin, models.Model):
    """Bytes for one printer. The dedup key makes "print this label" idempotent; a reprint is a new
    job with its own key and a reason. Status changes only in printing.services."""

    printer = models.ForeignKey(Printer, on_delete=models.PROTECT, related_name="jobs", verbose_name=_("printer"))
    kind = models.CharField(_("kind"), max_length=10, choices=JobKind.choices)
    shipment = models.ForeignKey("fulfillment.Shipment", null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="print_jobs", verbose_name=_("shipment"))
    wave = models.ForeignKey("fulfillment.Wave", null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="print_jobs", verbose_name=_("wave"))
    payload = models.BinaryField(_("ESC/POS bytes"))
    dedup_key = models.CharField(_("dedup key"), max_length=120, unique=True)
    reprint_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="reprints",
                                   verbose_name=_("reprint of"))
    reason = models.CharField(_("reason"), max_length=200, blank=True, default="")
    status = FSMField(_("status"), max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED,
                      protected=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    last_error = models.CharField(_("last error"), max_length=300, blank=True, default="")
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    # A claimed job belongs to its sender (a worker or a bridge) until this time; then it may be retried.
    lease_until = models.DateTimeField(_("leased until"), null=True, blank=True)
    claimed_by = models.ForeignKey(PrintBridge, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                   verbose_name=_("claimed by"))
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+", verbose_name=_("requested by"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)
    printed_at = models.DateTimeField(_("printed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("print job")
        verbose_name_plural = _("print jobs")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["printer", "status", "next_attempt_at"], name="printjob_due_idx")]
        constraints = [models.CheckConstraint(condition=~Q(dedup_key=""), name="printjob_dedup_key_set")]
        permissions = [("print", _("Can print labels and pick lists and manage the print queue"))]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk} → {self.printer_id} ({self.status})"

    @transition(field=status, source=JobStatus.QUEUED, target=JobStatus.SENDING)
    def claim(self):
        pass

    @transition(field=status, source=JobStatus.SENDING, target=JobStatus.PRINTED)
    def mark_printed(self):
        pass

    @transition(field=status, source=JobStatus.SENDING, target=JobStatus.QUEUED)
    def requeue(self):
        pass

    @transition(field=status, source=[JobStatus.SENDING, JobStatus.QUEUED], target=JobStatus.FAILED)
    def fail(self):
        pass

    @transition(field=status, source=JobStatus.FAILED, target=JobStatus.QUEUED)
    def retry(self):
        pass
