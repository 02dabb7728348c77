"""Payment snapshots (immutable, one per payment event), settlement files and rows, bank mappings, finance
periods and the differences reconciliation finds."""

import zlib

import pgtrigger
from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy
from django_fsm import FSMField, FSMModelMixin, transition

from finance.readers.base import BankColumnMapping, RowKind, SettlementSource


class PaymentEvent(models.TextChoices):
    PAYMENT = "payment", _("Paid")
    # The buyer's payment is reserved, not yet taken (Shopify manual capture); a capture follows.
    AUTHORIZATION = "authorization", _("Payment authorized")
    CAPTURE = "capture", _("Payment captured")


class PaymentSnapshot(models.Model):
    """What the order looked like at one payment event: amounts, discounts, lines. Never updated."""

    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, related_name="payment_snapshots",
                              verbose_name=_("order"))
    taken_at = models.DateTimeField(_("taken at"), auto_now_add=True, db_index=True)
    currency = models.CharField(_("currency"), max_length=3)
    paid_amount = models.DecimalField(_("paid amount"), max_digits=14, decimal_places=2)
    data = models.JSONField(_("snapshot"))
    event = models.CharField(_("payment event"), max_length=16, choices=PaymentEvent.choices,
                             default=PaymentEvent.PAYMENT)
    # The platform's transaction id(s) behind the event, when it names them.
    reference = models.CharField(_("platform reference"), max_length=200, blank=True, default="")
    # The platform's payment/transaction id (Taobao alipay_no, Shopify transaction id, WeChat Pay
    # transaction_id): the key a settlement row is matched on.
    payment_id = models.CharField(_("payment id"), max_length=64, blank=True, default="", db_index=True)
    # The fee the platform reported with the payment, when it reports one; null when unknown.
    platform_fee = models.DecimalField(_("platform fee"), max_digits=14, decimal_places=2, null=True, blank=True)

    class Meta:
        verbose_name = _("payment snapshot")
        verbose_name_plural = _("payment snapshots")
        ordering = ["-taken_at", "-id"]
        # An authorization and its capture are each recorded once, whoever reports the capture first
        # (the hub's own capture call or the platform's order update after a capture in its admin).
        constraints = [models.UniqueConstraint(fields=["order", "event"], condition=~Q(event="payment"),
                                               name="payment_snapshot_one_per_event")]
        # The save() guard below only stops the ORM; on PostgreSQL the database itself refuses a change made any
        # other way (raw SQL, a queryset update or delete, a psql session). TRUNCATE (the test suite's flush)
        # fires no row trigger. A deliberate repair runs inside pgtrigger.ignore("finance.PaymentSnapshot:…").
        triggers = [pgtrigger.Protect(name="snapshot_immutable", operation=pgtrigger.Update | pgtrigger.Delete)]

    def __str__(self) -> str:
        return f"{self.order_id} {self.paid_amount} {self.currency}"

    def save(self, *args, **kwargs):
        # Snapshots are evidence for reconciliation: once written they never change.
        if self.pk is not None:
            raise ValueError("Payment snapshots are immutable")
        super().save(*args, **kwargs)


class SettlementFileStatus(models.TextChoices):
    PENDING = "pending", _("Waiting to import")
    IMPORTING = "importing", _("Importing")
    IMPORTED = "imported", _("Imported")
    FAILED = "failed", _("Import failed")


class ImportFailure(models.TextChoices):
    """Why a settlement file was not imported (the rows of its error report say where)."""

    ROW_ERRORS = "row_errors", _("Some rows could not be read")
    UNREADABLE = "unreadable", _("The file could not be read")
    PERIOD_CLOSED = "period_closed", _("The period is closed")


class BankMapping(models.Model):
    """How one bank's statement export is laid out, saved once per bank by the finance user."""

    name = models.CharField(pgettext_lazy("bank", "bank name"), max_length=100, unique=True)
    date_column = models.CharField(_("date column"), max_length=100)
    description_column = models.CharField(_("description column"), max_length=100)
    reference_column = models.CharField(_("reference column"), max_length=100, blank=True, default="")
    amount_column = models.CharField(_("amount column"), max_length=100, blank=True, default="")
    credit_column = models.CharField(_("money-in column"), max_length=100, blank=True, default="")
    debit_column = models.CharField(_("money-out column"), max_length=100, blank=True, default="")
    counterparty_column = models.CharField(_("counterparty column"), max_length=100, blank=True, default="")
    date_format = models.CharField(_("date format"), max_length=40, default="%Y-%m-%d")
    currency = models.CharField(_("currency"), max_length=3, default="CNY")
    header_row = models.PositiveSmallIntegerField(_("header row"), default=1)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("bank column mapping")
        verbose_name_plural = _("bank column mappings")
        ordering = ["name"]
        constraints = [
            # An amount is read from one signed column or from money in and out.
            models.CheckConstraint(condition=~Q(amount_column="") | ~Q(credit_column="") | ~Q(debit_column=""),
                                   name="bankmapping_has_amount_column"),
            models.CheckConstraint(condition=Q(header_row__gte=1), name="bankmapping_header_row_positive"),
        ]

    def __str__(self) -> str:
        return self.name

    def column_mapping(self) -> BankColumnMapping:
        """The mapping as the bank statement reader takes it."""
        return BankColumnMapping(
            date_column=self.date_column, description_column=self.description_column,
            reference_column=self.reference_column, amount_column=self.amount_column,
            credit_column=self.credit_column, debit_column=self.debit_column,
            counterparty_column=self.counterparty_column, date_format=self.date_format,
            currency=self.currency, header_row=self.header_row)


class SettlementFile(FSMModelMixin, models.Model):
    """One uploaded settlement file or bank statement and how its import went. Status changes only in
    finance.imports; the claim of a run (pending → importing, with a lease) goes through oms.leases."""

    source = models.CharField(_("source"), max_length=20, choices=SettlementSource.choices)
    # A platform's bill belongs to one store; a bank statement to none (its payouts come from every store).
    store = models.ForeignKey("orders.Store", null=True, blank=True, on_delete=models.PROTECT,
                              related_name="settlement_files", verbose_name=_("store"))
    bank_mapping = models.ForeignKey(BankMapping, null=True, blank=True, on_delete=models.PROTECT,
                                     related_name="files", verbose_name=_("bank column mapping"))
    file_name = models.CharField(_("file name"), max_length=255)
    sha256 = models.CharField(_("SHA-256"), max_length=64)
    size = models.PositiveIntegerField(_("size (bytes)"), default=0)
    # The uploaded bytes live in the database, not under MEDIA: the import task may run on another machine than
    # the web process that took the upload, the file is evidence kept with the rows it produced (one backup),
    # and a failed import can be re-run from it. Listings defer it (SettlementFile.objects.defer("content")).
    content = models.BinaryField(_("content"), editable=False)
    # Whether content is zlib-compressed (every upload since it was; a 27 MB statement becomes 6 MB and is stored
    # in a fifth of the time). original_bytes() gives the file as uploaded either way.
    content_compressed = models.BooleanField(_("compressed"), default=False, editable=False)
    # The first and last day (Beijing time) the rows fall on; empty until read.
    period_start = models.DateField(_("period start"), null=True, blank=True)
    period_end = models.DateField(_("period end"), null=True, blank=True)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+", verbose_name=_("uploaded by"))
    uploaded_at = models.DateTimeField(_("uploaded at"), auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    status = FSMField(_("status"), max_length=10, choices=SettlementFileStatus.choices,
                      default=SettlementFileStatus.PENDING, protected=True)
    # A run owns the file until then; after it (the worker died) the sweeper hands the file to a new run.
    lease_until = models.DateTimeField(_("leased until"), null=True, blank=True)
    row_count = models.PositiveIntegerField(_("rows in the file"), default=0)
    # Rows already imported from another file (an overlapping download): counted, not stored twice.
    skipped_count = models.PositiveIntegerField(_("rows already imported"), default=0)
    progress_done = models.PositiveIntegerField(_("rows processed"), default=0)
    progress_total = models.PositiveIntegerField(_("rows to process"), default=0)
    failure = models.CharField(_("failure"), max_length=20, choices=ImportFailure.choices, blank=True, default="")
    # [{"line_no": 12, "column": "金额", "message": "…"}, …]; line_no 0 for what concerns the whole file.
    error_report = models.JSONField(_("error report"), default=list, blank=True)
    # The header row as written in the file: the names of each row's raw cells (SettlementRow.raw).
    raw_columns = models.JSONField(_("columns"), default=list, blank=True)

    class Meta:
        verbose_name = _("settlement file")
        verbose_name_plural = _("settlement files")
        ordering = ["-uploaded_at", "-id"]
        constraints = [
            # The same bytes are imported once per source; a failed import does not count, so the file can be
            # uploaded again (after a bank mapping is fixed or the period reopened).
            models.UniqueConstraint(fields=["source", "sha256"], condition=~Q(status=SettlementFileStatus.FAILED),
                                    name="settlementfile_once_per_source"),
            models.CheckConstraint(condition=Q(progress_done__lte=F("progress_total")),
                                   name="settlementfile_progress_within_total"),
        ]
        indexes = [models.Index(fields=["status", "lease_until"], name="settlementfile_due_idx")]

    def __str__(self) -> str:
        return f"{self.get_source_display()} {self.file_name}"

    def original_bytes(self) -> bytes:
        """The file as it was uploaded."""
        data = bytes(self.content)
        return zlib.decompress(data) if self.content_compressed else data

    @transition(field=status, source=SettlementFileStatus.IMPORTING, target=SettlementFileStatus.IMPORTED)
    def finish(self):
        pass

    @transition(field=status, source=[SettlementFileStatus.PENDING, SettlementFileStatus.IMPORTING],
                target=SettlementFileStatus.FAILED)
    def fail(self):
        pass


class SettlementRow(models.Model):
    """One row of a settlement file or bank statement, normalised (finance.readers.base.ParsedRow)."""

    # No index of its own: settlementrow_file_idx (file, line_no) serves lookups by file, one index less to
    # keep up on every imported row.
    file = models.ForeignKey(SettlementFile, on_delete=models.PROTECT, related_name="rows",
                             verbose_name=_("settlement file"), db_index=False)
    # The file's source again: the provider's row id is unique within a source, across files.
    source = models.CharField(_("source"), max_length=20, choices=SettlementSource.choices)
    external_row_id = models.CharField(_("external row id"), max_length=128)
    line_no = models.PositiveIntegerField(_("line"))
    kind = models.CharField(_("kind"), max_length=20, choices=RowKind.choices)
    payment_id = models.CharField(_("payment id"), max_length=64, blank=True, default="")
    platform_order_id = models.CharField(_("platform order id"), max_length=64, blank=True, default="")
    merchant_order_no = models.CharField(_("merchant order number"), max_length=64, blank=True, default="")
    gross = models.DecimalField(_("gross amount"), max_digits=14, decimal_places=2)
    fee = models.DecimalField(_("fee"), max_digits=14, decimal_places=2)
    net = models.DecimalField(_("net amount"), max_digits=14, decimal_places=2)
    currency = models.CharField(_("currency"), max_length=3)
    occurred_at = models.DateTimeField(_("occurred at"))
    description = models.TextField(_("description"), blank=True, default="")
    # The cells as the file had them, in the file's column order (SettlementFile.raw_columns names them).
    raw = models.JSONField(_("raw row"), default=list, blank=True)

    class Meta:
        verbose_name = _("settlement row")
        verbose_name_plural = _("settlement rows")
        ordering = ["file", "line_no"]
        constraints = [models.UniqueConstraint(fields=["source", "external_row_id"],
                                               name="settlementrow_once_per_source")]
        # Plain b-tree indexes (db_index on a CharField would add a second, LIKE index per column on PostgreSQL,
        # which matching never uses and every import would pay for).
        indexes = [
            models.Index(fields=["payment_id"], name="settlementrow_payment_idx"),
            models.Index(fields=["platform_order_id"], name="settlementrow_platform_idx"),
            models.Index(fields=["merchant_order_no"], name="settlementrow_merchant_idx"),
            # A month's rows across files (summaries, the period report, payouts). Cheap to keep up: a file's rows
            # come in time order, so the entries go in at the index's end.
            models.Index(fields=["source", "occurred_at"], name="settlementrow_period_idx"),
            models.Index(fields=["file", "line_no"], name="settlementrow_file_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.source}:{self.external_row_id} {self.net} {self.currency}"

    @property
    def raw_by_column(self) -> dict[str, str]:
        """The raw cells by the file's column names (a row stored as a dict before columns were kept: as is)."""
        if isinstance(self.raw, dict):
            return self.raw
        return {name: value for name, value in zip(self.file.raw_columns, self.raw, strict=False) if name}


class FinancePeriodStatus(models.TextChoices):
    OPEN = "open", pgettext_lazy("finance period", "Open")
    CLOSED = "closed", pgettext_lazy("finance period", "Closed")


class FinancePeriod(FSMModelMixin, models.Model):
    """A month of one store's books (or of all stores, store empty); a closed month refuses new imports."""

    store = models.ForeignKey("orders.Store", null=True, blank=True, on_delete=models.PROTECT,
                              related_name="finance_periods", verbose_name=_("store"))
    month = models.DateField(_("month"), help_text=_("The first day of the month."))
    status = FSMField(_("status"), max_length=10, choices=FinancePeriodStatus.choices,
                      default=FinancePeriodStatus.OPEN, protected=True)
    closed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="+", verbose_name=_("closed by"))
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    # [{"at": iso time, "by": user id, "username": …, "reason": …}, …], oldest first: every reopening is kept.
    reopen_history = models.JSONField(_("reopen history"), default=list, blank=True)

    class Meta:
        verbose_name = _("finance period")
        verbose_name_plural = _("finance periods")
        ordering = ["-month", "store_id"]
        constraints = [
            models.UniqueConstraint(fields=["store", "month"], name="financeperiod_one_per_store_month"),
            # NULLs are distinct in a unique index: the all-stores month needs its own.
            models.UniqueConstraint(fields=["month"], condition=Q(store__isnull=True),
                                    name="financeperiod_one_all_stores_month"),
        ]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m} {self.store or ''}".strip()

    @transition(field=status, source=FinancePeriodStatus.OPEN, target=FinancePeriodStatus.CLOSED)
    def close(self):
        pass

    @transition(field=status, source=FinancePeriodStatus.CLOSED, target=FinancePeriodStatus.OPEN)
    def reopen(self):
        pass


class DifferenceReason(models.TextChoices):
    MISSING_IN_HUB = "missing_in_hub", _("Missing in the hub")
    MISSING_IN_SETTLEMENT = "missing_in_settlement", _("Missing in the settlement")
    AMOUNT_DIFFERS = "amount_differs", _("Amount differs")
    FEE_DIFFERS = "fee_differs", _("Fee differs from the store's fee rate")
    REFUND_NOT_SETTLED = "refund_not_settled", _("Refund not settled")
    SETTLED_TWICE = "settled_twice", _("Settled twice")
    CURRENCY_DIFFERS = "currency_differs", _("Currency differs")


class DifferenceStatus(models.TextChoices):
    OPEN = "open", pgettext_lazy("difference", "Open")
    RESOLVED = "resolved", _("Resolved")


class Difference(FSMModelMixin, models.Model):
    """One item reconciliation could not match, with its reason; a person resolves it with a note."""

    month = models.DateField(_("month"), help_text=_("The first day of the month."))
    source = models.CharField(_("source"), max_length=20, choices=SettlementSource.choices)
    store = models.ForeignKey("orders.Store", null=True, blank=True, on_delete=models.PROTECT,
                              related_name="finance_differences", verbose_name=_("store"))
    reason = models.CharField(_("reason"), max_length=32, choices=DifferenceReason.choices)
    order = models.ForeignKey("orders.Order", null=True, blank=True, on_delete=models.PROTECT,
                              related_name="finance_differences", verbose_name=_("order"))
    settlement_row = models.ForeignKey(SettlementRow, null=True, blank=True, on_delete=models.PROTECT,
                                       related_name="differences", verbose_name=_("settlement row"))
    # What the hub expected and what the settlement says; one is empty when that side is missing.
    expected_amount = models.DecimalField(_("expected amount"), max_digits=14, decimal_places=2, null=True,
                                          blank=True)
    actual_amount = models.DecimalField(_("actual amount"), max_digits=14, decimal_places=2, null=True, blank=True)
    currency = models.CharField(_("currency"), max_length=3)
    status = FSMField(_("status"), max_length=10, choices=DifferenceStatus.choices, default=DifferenceStatus.OPEN,
                      protected=True)
    created_at = models.DateTimeField(_("found at"), auto_now_add=True)
    resolved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+", verbose_name=_("resolved by"))
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)
    resolution_note = models.TextField(_("resolution note"), blank=True, default="")

    class Meta:
        verbose_name = _("difference")
        verbose_name_plural = _("differences")
        ordering = ["-month", "reason", "id"]
        indexes = [
            models.Index(fields=["month", "source", "status"], name="difference_period_idx"),
            models.Index(fields=["store", "month"], name="difference_store_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m} {self.get_reason_display()}"

    @transition(field=status, source=DifferenceStatus.OPEN, target=DifferenceStatus.RESOLVED)
    def resolve(self):
        pass

    @transition(field=status, source=DifferenceStatus.RESOLVED, target=DifferenceStatus.OPEN)
    def reopen(self):
        pass


class AccountMapping(models.Model):
    """The seller's chart of accounts for one kind of settlement amount (科目映射表): which account is debited
    and which credited for a positive amount of that kind. A store's own mapping wins over the default one
    (store empty); finance.journal refuses a kind that has neither."""

    store = models.ForeignKey("orders.Store", null=True, blank=True, on_delete=models.CASCADE,
                              related_name="account_mappings", verbose_name=_("store"),
                              help_text=_("Empty: the default for every store without its own mapping."))
    kind = models.CharField(_("kind"), max_length=20, choices=RowKind.choices)
    debit_account_code = models.CharField(_("debit account code"), max_length=40)
    debit_account_name = models.CharField(_("debit account name"), max_length=200)
    credit_account_code = models.CharField(_("credit account code"), max_length=40)
    credit_account_name = models.CharField(_("credit account name"), max_length=200)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("account mapping")
        verbose_name_plural = _("account mappings")
        ordering = ["store_id", "kind"]
        constraints = [
            models.UniqueConstraint(fields=["store", "kind"], name="accountmapping_one_per_store_kind"),
            # NULLs are distinct in a unique index: the default mapping of a kind needs its own.
            models.UniqueConstraint(fields=["kind"], condition=Q(store__isnull=True),
                                    name="accountmapping_one_default_per_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.debit_account_code} / {self.credit_account_code}"
