"""Per-store channel settings and sync state (credentials, watermark, leases, counters) and the inbox of every raw payload received."""

from decimal import Decimal

from django.db import models
from django.db.models import Q
from django.db.models.functions import Coalesce, Mod, Ord, Right
from django.utils.translation import gettext, ngettext, pgettext
from django.utils.translation import gettext_lazy as _

# Partitions of a store's inbox (see InboxMessage.partition). Changing it needs a migration of the column.
INBOX_PARTITIONS = 16


class ChannelSyncState(models.Model):
    """A store's channel: its platform-only settings (credentials, polling, the stock push switch and
    formula, the API version) and how far it has been polled, when it polls next, what happened so far.
    The order model's Store stays platform-neutral; connectors own everything about talking to the platform."""

    store = models.OneToOneField("orders.Store", on_delete=models.CASCADE, related_name="sync_state",
                                 verbose_name=_("store"))
    enabled = models.BooleanField(_("sync enabled"), default=True)
    poll_interval_seconds = models.PositiveIntegerField(_("poll interval (seconds)"), default=60)
    # Every order updated before the watermark has been fetched into the inbox.
    watermark = models.DateTimeField(_("watermark"), null=True, blank=True)
    initial_lookback_hours = models.PositiveIntegerField(_("first poll looks back (hours)"), default=24)
    next_poll_at = models.DateTimeField(_("next poll"), null=True, blank=True, db_index=True)
    # One poll and one inbox drain at a time per store, without holding a database lock during HTTP.
    poll_lease_until = models.DateTimeField(_("polling leased until"), null=True, blank=True)
    process_lease_until = models.DateTimeField(_("processing leased until"), null=True, blank=True)
    last_poll_started_at = models.DateTimeField(_("last poll started"), null=True, blank=True)
    last_success_at = models.DateTimeField(_("last successful poll"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True, default="")
    last_error_at = models.DateTimeField(_("last error at"), null=True, blank=True)
    consecutive_failures = models.PositiveIntegerField(_("failures in a row"), default=0)
    orders_fetched = models.PositiveBigIntegerField(_("payloads fetched by polling"), default=0)
    orders_created = models.PositiveBigIntegerField(_("orders imported"), default=0)
    orders_updated = models.PositiveBigIntegerField(_("orders updated"), default=0)
    webhooks_received = models.PositiveBigIntegerField(_("webhooks received"), default=0)
    duplicates = models.PositiveBigIntegerField(_("duplicate deliveries"), default=0)
    stale_updates = models.PositiveBigIntegerField(_("older updates ignored"), default=0)
    signature_failures = models.PositiveBigIntegerField(_("bad signatures"), default=0)
    errors = models.PositiveBigIntegerField(_("errors"), default=0)
    # Platform-only store settings (the order model stays platform-neutral).
    # Shopify: blank follows the hub's pinned version (connectors.shopify.client.DEFAULT_API_VERSION).
    api_version = models.CharField(_("API version"), max_length=10, blank=True, default="")
    # What the platform said it served (X-Shopify-API-Version): differs from the asked one once it expired.
    api_version_served = models.CharField(_("API version served by the platform"), max_length=20, blank=True,
                                          default="")
    # Shopify stores that capture payments manually: an authorized order is fulfilled, and captured on shipping.
    authorized_counts_as_paid = models.BooleanField(_("authorized payments count as paid for fulfilment"),
                                                    default=False)
    # App keys, secrets and tokens. Kept out of __repr__, logs, list pages and the API.
    credentials = models.JSONField(_("credentials"), default=dict, blank=True)
    # Channel stock: what the platform may sell = floor(available × share) − buffer, never below zero.
    stock_push_enabled = models.BooleanField(_("push stock to the platform"), default=True)
    stock_share = models.DecimalField(_("share of available stock"), max_digits=5, decimal_places=4,
                                      default=Decimal("1"))
    stock_buffer = models.PositiveIntegerField(_("stock buffer"), default=0)
    # Every after-sale updated before this has been fetched (platforms whose order payload does not carry
    # the after-sale id: Douyin, Pinduoduo); polled after the orders.
    after_sales_watermark = models.DateTimeField(_("after-sales watermark"), null=True, blank=True)

    class Meta:
        verbose_name = _("channel settings and sync")
        verbose_name_plural = _("channel settings and sync")

    def __str__(self) -> str:
        return f"sync {self.store_id}"


class InboxKind(models.TextChoices):
    WEBHOOK = "webhook", _("Webhook")
    POLL = "poll", _("Poll")
    # A polled platform after-sale (Douyin, Pinduoduo): applied to tickets, never drained as an order.
    AFTER_SALE = "after_sale", _("After-sale poll")


class InboxStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    DONE = "done", _("Processed")
    SKIPPED = "skipped", _("Skipped (older than what we have)")
    DEAD = "dead", _("Dead letter")
    DISCARDED = "discarded", _("Discarded")


class DeadReason(models.TextChoices):
    BAD_PAYLOAD = "bad_payload", _("Malformed payload")
    UNMAPPED_SKU = "unmapped_sku", _("Unknown SKU")
    SIGNATURE = "signature", _("Bad signature")
    REJECTED = "rejected", _("Refused by the order rules")
    RETRIES_EXHAUSTED = "retries_exhausted", _("Retries exhausted")


class InboxMessage(models.Model):
    """One payload exactly as received (webhook body or one polled order), stored before any processing."""

    store = models.ForeignKey("orders.Store", on_delete=models.CASCADE, related_name="inbox",
                              verbose_name=_("store"))
    kind = models.CharField(_("kind"), max_length=10, choices=InboxKind.choices)
    topic = models.CharField(_("topic"), max_length=64, blank=True, default="")
    # What identifies one delivery: the platform's event id for pushes, id + updated time for polls.
    delivery_key = models.CharField(_("delivery key"), max_length=200)
    platform_order_id = models.CharField(_("platform order id"), max_length=64, blank=True, default="")
    platform_updated_at = models.DateTimeField(_("platform updated at"), null=True, blank=True)
    received_at = models.DateTimeField(_("received at"), auto_now_add=True)
    body = models.TextField(_("raw body"))
    headers = models.JSONField(_("headers"), default=dict, blank=True)
    status = models.CharField(_("status"), max_length=10, choices=InboxStatus.choices, default=InboxStatus.PENDING)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    dead_reason = models.CharField(_("reason"), max_length=20, choices=DeadReason.choices, blank=True, default="")
    last_error = models.TextField(_("last error"), blank=True, default="")
    processed_at = models.DateTimeField(_("processed at"), null=True, blank=True)
    duplicates = models.PositiveIntegerField(_("duplicate deliveries"), default=0)
    order = models.ForeignKey("orders.Order", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                              verbose_name=_("order"))
    # A refused (unverified) delivery keeps only a bounded record: the start of its body in ``body``, and
    # these, so anyone posting junk cannot fill the database and operators still see who sent what.
    body_size = models.PositiveIntegerField(_("body size (bytes)"), null=True, blank=True)
    body_sha256 = models.CharField(_("body SHA-256"), max_length=64, blank=True, default="")
    source_address = models.GenericIPAddressField(_("source address"), null=True, blank=True)
    # Which of a store's INBOX_PARTITIONS the row is drained in: the versions of one platform order always
    # land in the same partition, so several workers drain one store at once and never apply two versions of
    # one order concurrently. Filled by the database from the id's last character, so raw inserts get it too.
    partition = models.GeneratedField(
        expression=Mod(Coalesce(Ord(Right("platform_order_id", 1)), 0), INBOX_PARTITIONS),
        output_field=models.PositiveSmallIntegerField(), db_persist=True, verbose_name=_("partition"))

    class Meta:
        verbose_name = _("inbox message")
        verbose_name_plural = _("inbox messages")
        constraints = [models.UniqueConstraint(fields=["store", "delivery_key"], name="inbox_unique_delivery")]
        indexes = [
            models.Index(fields=["store", "status", "next_attempt_at"]),
            models.Index(fields=["store", "partition", "status", "platform_updated_at", "id"],
                         name="inbox_partition_due"),
            models.Index(fields=["store", "platform_order_id"]),
            models.Index(fields=["status", "received_at"]),
            # The purge of refused deliveries past their retention.
            models.Index(fields=["received_at"], condition=Q(dead_reason="signature"), name="inbox_refused_received"),
        ]

    def __str__(self) -> str:
        return f"{self.store_id}:{self.delivery_key} {self.status}"


class PushStatus(models.TextChoices):
    PENDING = "pending", _("Waiting to be sent")
    SENDING = "sending", _("Sending")
    SENT = "sent", _("Confirmed by the platform")
    # Confirmed, but only for the lines the platform knows: others in the parcel are not its sub-orders.
    PARTIAL = "partial", _("Partly confirmed by the platform")
    FAILED = "failed", _("Failed (needs a person)")
    # A person decided the platform is not to be told by us (e.g. it was shipped there by hand).
    DISCARDED = "discarded", _("Discarded by a person")


class PlatformOutboxRow(models.Model):
    """The bookkeeping every platform outbox row shares: retries, the sender's lease, the last error and the
    platform's answer. Claimed through oms.leases.outbox_claim_one; ``status`` is the concrete model's."""

    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    lease_until = models.DateTimeField(_("leased until"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True, default="")
    response = models.JSONField(_("platform response"), default=dict, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        abstract = True


class ShipmentPush(PlatformOutboxRow):
    """Outbox row: one shipment (carrier + tracking number, maybe some lines) to confirm to the platform.

    The row is written in the transaction that ships, and sent by a worker until the platform confirms;
    (order, shipment key) is unique, so one shipment is never sent twice.
    """

    order = models.ForeignKey("orders.Order", on_delete=models.CASCADE, related_name="shipment_pushes",
                              verbose_name=_("order"))
    store = models.ForeignKey("orders.Store", on_delete=models.CASCADE, related_name="+", verbose_name=_("store"))
    shipment_key = models.CharField(_("shipment"), max_length=100)
    carrier_code = models.CharField(_("carrier"), max_length=32)
    tracking_number = models.CharField(_("tracking number"), max_length=64)
    # Platform line ids of a partial (split) shipment; empty means the whole order.
    line_ids = models.JSONField(_("platform line ids"), default=list, blank=True)
    # Our line numbers behind line_ids, and those of the parcel left out because the platform does not know
    # them (no platform line id: a gift or a line added here): what the platform is told, said in our terms.
    line_nos = models.JSONField(_("line numbers"), default=list, blank=True)
    skipped_line_nos = models.JSONField(_("lines the platform does not know"), default=list, blank=True)
    status = models.CharField(_("status"), max_length=10, choices=PushStatus.choices, default=PushStatus.PENDING)
    sent_at = models.DateTimeField(_("confirmed at"), null=True, blank=True)

    class Meta(PlatformOutboxRow.Meta):
        verbose_name = _("shipment push")
        verbose_name_plural = _("shipment pushes")
        constraints = [models.UniqueConstraint(fields=["order", "shipment_key"], name="shipment_push_unique")]
        indexes = [models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.order_id} {self.carrier_code} {self.tracking_number} {self.status}"

    @property
    def state_summary(self) -> str:
        """One sentence for the order page: what the platform was told and what it accepted, in our line numbers."""
        lines, not_platform = _lines_phrase(self.line_nos), _not_platform_phrase(self.skipped_line_nos)
        if self.status == PushStatus.PARTIAL:
            return gettext("Partly confirmed: the platform confirmed %(confirmed)s; not sent: %(not_platform)s.") % {
                "confirmed": lines, "not_platform": not_platform}
        if self.status == PushStatus.SENT:
            if self.line_nos:
                return gettext("The platform confirmed %(lines)s.") % {"lines": lines}
            if self.line_ids:  # a row from before line numbers were kept
                return gettext("The platform confirmed the shipment of these sub-orders.")
            return gettext("The platform confirmed the shipment of the whole order.")
        if self.status == PushStatus.FAILED:
            return gettext("The platform did not accept this shipment. Fix the cause and send it again, or "
                           "discard it if the platform was told another way.")
        if self.status == PushStatus.DISCARDED:
            return gettext("Discarded by a person: the OMS will not tell the platform about this shipment.")
        if self.skipped_line_nos:
            return gettext("Waiting for the platform: %(lines)s will be sent; not sent: %(not_platform)s.") % {
                "lines": lines, "not_platform": not_platform}
        if self.attempts and self.last_error:
            return gettext("Not confirmed yet after %(attempts)s tries; it is tried again by itself.") % {
                "attempts": self.attempts}
        return gettext("Waiting to be sent to the platform.")


def line_list(line_nos) -> str:
    """Order line numbers as a reader writes them: "2, 3" in English, "2、3" in Chinese."""
    return pgettext("list separator", ", ").join(str(n) for n in line_nos or [])


def _lines_phrase(line_nos) -> str:
    return ngettext("line %(lines)s", "lines %(lines)s", len(line_nos or [])) % {"lines": line_list(line_nos)}


def _not_platform_phrase(line_nos) -> str:
    return ngettext("line %(lines)s is not one of the platform's sub-orders",
                    "lines %(lines)s are not the platform's sub-orders", len(line_nos or [])) % {
        "lines": line_list(line_nos)}


class ChannelStock(models.Model):
    """The quantity a store's platform shows for one SKU: what was pushed last, and whether it is stale.

    Every stock change bumps ``change_seq``; a push records the ``change_seq`` it computed from, so a
    change that arrives while a push is on its way is never lost (it leaves the row dirty).
    """

    store = models.ForeignKey("orders.Store", on_delete=models.CASCADE, related_name="channel_stock",
                              verbose_name=_("store"))
    sku = models.ForeignKey("inventory.SKU", on_delete=models.CASCADE, related_name="channel_stock",
                            verbose_name=_("SKU"))
    change_seq = models.PositiveBigIntegerField(_("stock change number"), default=0)
    pushed_seq = models.PositiveBigIntegerField(_("pushed change number"), default=0)
    changed_at = models.DateTimeField(_("changed at"), null=True, blank=True)
    last_pushed_quantity = models.IntegerField(_("last pushed quantity"), null=True, blank=True)
    last_pushed_at = models.DateTimeField(_("last pushed at"), null=True, blank=True)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True, default="")
    pushes = models.PositiveIntegerField(_("platform calls"), default=0)
    # The platform ids a push needs beyond the SKU mapping, found by the first push and reused (Shopify: the
    # variant's inventory item and the location, with the variant they were found for).
    platform_ids = models.JSONField(_("platform ids for the push"), default=dict, blank=True)

    class Meta:
        verbose_name = _("channel stock")
        verbose_name_plural = _("channel stock")
        constraints = [models.UniqueConstraint(fields=["store", "sku"], name="channel_stock_unique")]

    def __str__(self) -> str:
        return f"{self.store_id}/{self.sku_id}: {self.last_pushed_quantity}"


class SyncCheck(models.Model):
    """Completeness check of one store and window: orders the platform reports vs orders the hub holds."""

    store = models.ForeignKey("orders.Store", on_delete=models.CASCADE, related_name="sync_checks",
                              verbose_name=_("store"))
    window_start = models.DateTimeField(_("from"))
    window_end = models.DateTimeField(_("to"))
    platform_count = models.PositiveIntegerField(_("orders on the platform"))
    hub_count = models.PositiveIntegerField(_("orders in the hub"))
    missing = models.JSONField(_("missing platform order ids"), default=list, blank=True)
    checked_at = models.DateTimeField(_("checked at"), auto_now_add=True)

    class Meta:
        verbose_name = _("sync check")
        verbose_name_plural = _("sync checks")
        ordering = ["-checked_at", "-id"]
        indexes = [models.Index(fields=["store", "-checked_at"])]

    def __str__(self) -> str:
        return f"{self.store_id} {self.window_start:%Y-%m-%d %H:%M}: {self.platform_count}/{self.hub_count}"

    @property
    def gap(self) -> int:
        return self.platform_count - self.hub_count


class CaptureStatus(models.TextChoices):
    PENDING = "pending", _("Waiting to be captured")
    SENDING = "sending", _("Capturing")
    CAPTURED = "captured", _("Captured on the platform")
    FAILED = "failed", _("Failed (needs a person)")


class PaymentCapture(PlatformOutboxRow):
    """Outbox row: capture an authorized payment on the platform once the order has shipped.

    Written in the transaction that records the last shipment confirmation and sent by a worker until
    the platform answers; one row per order, so a payment is never captured twice by the hub.
    """

    order = models.OneToOneField("orders.Order", on_delete=models.CASCADE, related_name="payment_capture",
                                 verbose_name=_("order"))
    store = models.ForeignKey("orders.Store", on_delete=models.CASCADE, related_name="+", verbose_name=_("store"))
    status = models.CharField(_("status"), max_length=10, choices=CaptureStatus.choices,
                              default=CaptureStatus.PENDING)
    captured_at = models.DateTimeField(_("captured at"), null=True, blank=True)

    class Meta(PlatformOutboxRow.Meta):
        verbose_name = _("payment capture")
        verbose_name_plural = _("payment captures")
        indexes = [models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.order_id} capture {self.status}"


class RefundPushStatus(models.TextChoices):
    PENDING = "pending", _("Waiting to be sent")
    SENDING = "sending", _("Sending")
    SENT = "sent", _("Confirmed by the platform")
    FAILED = "failed", _("Failed (needs a person)")


class RefundPush(PlatformOutboxRow):
    """Outbox row: one refund decision (agree to refund an amount on a platform after-sale) to send.

    Written in the transaction that decides the refund and sent by a worker until the platform confirms;
    ``refund_ref`` (the after-sales refund's id) is unique, so one refund is never sent twice.
    """

    order = models.ForeignKey("orders.Order", on_delete=models.CASCADE, related_name="refund_pushes",
                              verbose_name=_("order"))
    store = models.ForeignKey("orders.Store", on_delete=models.CASCADE, related_name="+", verbose_name=_("store"))
    # The after-sales Refund row's id (connectors sits below aftersales, so no foreign key).
    refund_ref = models.PositiveBigIntegerField(_("refund"), unique=True)
    platform_after_sale_id = models.CharField(_("platform after-sale id"), max_length=64, blank=True, default="")
    amount = models.DecimalField(_("amount"), max_digits=14, decimal_places=2)
    currency = models.CharField(_("currency"), max_length=3, default="CNY")
    # Platform line ids the refund is for (Shopify refunds per line item); empty means the order as a whole.
    line_ids = models.JSONField(_("platform line ids"), default=list, blank=True)
    status = models.CharField(_("status"), max_length=10, choices=RefundPushStatus.choices,
                              default=RefundPushStatus.PENDING)
    platform_refund_id = models.CharField(_("platform refund id"), max_length=64, blank=True, default="")
    sent_at = models.DateTimeField(_("confirmed at"), null=True, blank=True)

    class Meta(PlatformOutboxRow.Meta):
        verbose_name = _("refund push")
        verbose_name_plural = _("refund pushes")
        indexes = [models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.order_id} refund {self.refund_ref} {self.status}"
