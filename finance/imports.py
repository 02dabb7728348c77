"""Settlement file import: upload (refusing a file seen before), then read and load all-or-nothing with progress."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
from datetime import date, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from finance import readers
from finance.models import (
    BankMapping,
    FinancePeriod,
    FinancePeriodStatus,
    ImportFailure,
    SettlementFile,
    SettlementFileStatus,
    SettlementRow,
)
from finance.readers.base import ReaderFailure, ReadResult, RowError, RowKind, SettlementSource
from oms.exceptions import DomainError
from oms.guard import clean_data, clean_text, has_control_chars
from oms.leases import lease_claim_one
from orders.models import Store

logger = logging.getLogger(__name__)

# Rows per insert; between two chunks the progress row is written (bulk_create's batch on SQLite too).
CHUNK = 5000
# A run owns its file this long; an import of 200,000 rows takes well under a minute, so a file still
# "importing" after this lost its worker and the sweeper hands it to a new run.
LEASE = timedelta(minutes=30)
# A pending file nobody picked up within this (the queued message was lost) is queued again by the sweeper.
PENDING_GRACE = timedelta(minutes=2)
MAX_FILE_BYTES = 200 * 1024 * 1024
_CENT = Decimal("0.01")
_AMOUNT_LIMIT = Decimal(10) ** 12  # numeric(14, 2)
_TEXT_LIMITS = {"external_row_id": 128, "payment_id": 64, "platform_order_id": 64, "merchant_order_no": 64}
_KINDS = frozenset(RowKind.values)


class SettlementImportError(DomainError):
    http_status = 409


def settlement_file_upload(*, source: str, data: bytes, file_name: str, user=None, store: Store | None = None,
                           bank_mapping: BankMapping | None = None) -> SettlementFile:
    """Keep an uploaded file as a pending SettlementFile; the caller queues the import after commit
    (finance.tasks.run_settlement_import_task) or runs it at once (settlement_import_run).

    Refused: an unknown source, an empty or oversized file, a bank statement without its column mapping, and
    a file whose bytes were imported (or are being imported) from the same source before.
    """
    if source not in SettlementSource.values:
        raise SettlementImportError(_("Unknown settlement source."), code="settlement_source_unknown",
                                    http_status=400)
    if not data:
        raise SettlementImportError(_("The file is empty."), code="settlement_file_empty", http_status=400)
    if len(data) > MAX_FILE_BYTES:
        raise SettlementImportError(_("The file is larger than %(limit)d MB.") % {"limit": MAX_FILE_BYTES >> 20},
                                    code="settlement_file_too_large", http_status=400)
    if source == SettlementSource.BANK and bank_mapping is None:
        raise SettlementImportError(_("Choose the bank's column mapping for a bank statement."),
                                    code="settlement_bank_mapping_required", http_status=400)
    digest = hashlib.sha256(data).hexdigest()
    earlier = (SettlementFile.objects.defer("content").filter(source=source, sha256=digest)
               .exclude(status=SettlementFileStatus.FAILED).first())
    if earlier is not None:
        raise _duplicate(earlier)
    try:
        with transaction.atomic():  # a savepoint: the same file uploaded twice at once is refused, not a 500
            return SettlementFile.objects.create(
                source=source, store=store, bank_mapping=bank_mapping, file_name=clean_text(file_name)[:255],
                sha256=digest, size=len(data), content=data, uploaded_by=user)
    except IntegrityError:
        earlier = (SettlementFile.objects.defer("content").filter(source=source, sha256=digest)
                   .exclude(status=SettlementFileStatus.FAILED).first())
        if earlier is None:
            raise
        raise _duplicate(earlier) from None


def _duplicate(earlier: SettlementFile) -> SettlementImportError:
    return SettlementImportError(
        _("This file was already uploaded on %(when)s as %(name)s; it is not imported twice.")
        % {"when": timezone.localtime(earlier.uploaded_at).strftime("%Y-%m-%d %H:%M"), "name": earlier.file_name},
        code="settlement_file_duplicate", data={"file_id": earlier.pk})


def settlement_import_run(*, file_id: int, chunk: int = CHUNK) -> SettlementFile | None:
    """Import one uploaded file (the task's body): claim it, read it, load it all-or-nothing.

    Returns None when another run holds the file or it is already done (a second delivery of the task);
    else the file, imported or failed with its error report.
    """
    settlement_file = settlement_file_claim(file_id=file_id)
    if settlement_file is None:
        return None
    return settlement_file_load(settlement_file=settlement_file, result=_read(settlement_file), chunk=chunk)


def settlement_file_claim(*, file_id: int) -> SettlementFile | None:
    """Take a file for one run: pending (or importing with its lease run out) → importing, with a lease.
    None when it is not due (done, failed, or another run holds it)."""
    now = timezone.now()
    due = SettlementFile.objects.filter(Q(status=SettlementFileStatus.PENDING)
                                        | Q(status=SettlementFileStatus.IMPORTING, lease_until__lt=now))
    # The claim is bookkeeping of the queue (oms.leases), the one place status is written by an UPDATE.
    if not lease_claim_one(due, pk=file_id, lease_field="lease_until", lease=LEASE, now=now,
                           set_fields={"status": SettlementFileStatus.IMPORTING, "progress_done": 0,
                                       "progress_total": 0}):
        return None
    return SettlementFile.objects.select_related("bank_mapping").get(pk=file_id)


def _read(settlement_file: SettlementFile) -> ReadResult:
    mapping = settlement_file.bank_mapping.column_mapping() if settlement_file.bank_mapping else None
    try:
        return readers.read(settlement_file.source, bytes(settlement_file.content), mapping=mapping)
    except ReaderFailure as exc:
        return ReadResult(errors=[RowError(line_no=0, column="", message=exc.message)])


def settlement_file_load(*, settlement_file: SettlementFile, result: ReadResult, chunk: int = CHUNK
                         ) -> SettlementFile:
    """Store what the reader made of a claimed file: every row, or none.

    Row errors (the reader's and the checks here) fail the file with its error report; so does a row in a
    closed period. Rows another file already brought (same source and external row id) are skipped and counted.
    """
    rows = result.rows
    errors = list(result.errors) + _row_problems(result)
    if errors:
        failure = ImportFailure.UNREADABLE if all(error.line_no == 0 for error in errors) else ImportFailure.ROW_ERRORS
        return _fail(settlement_file, failure, errors, row_count=len(rows) + _error_lines(result.errors))
    local = ZoneInfo(settings.TIME_ZONE)
    days = [timezone.localtime(row.occurred_at, local).date() for row in rows]
    period_start, period_end = (min(days), max(days)) if days else (None, None)
    closed = _closed_months(settlement_file, period_start, period_end)
    if closed:
        months = ", ".join(f"{month:%Y-%m}" for month in closed)
        return _fail(settlement_file, ImportFailure.PERIOD_CLOSED, [RowError(
            line_no=0, column="", message=_("The period %(months)s is closed; reopen it to import this file.")
            % {"months": months})], row_count=len(rows))
    total = len(rows)
    SettlementFile.objects.filter(pk=settlement_file.pk).update(progress_total=total, progress_done=0,
                                                                 row_count=total)
    # The progress row is written from a second connection so a polling page sees it while the rows wait
    # uncommitted. Only when this function owns the transaction: inside a caller's one the file row may be
    # locked by that same transaction and the second connection would wait for us forever.
    progress = _ProgressWriter(settlement_file.pk, enabled=connection.vendor == "postgresql"
                               and not connection.in_atomic_block)
    try:
        with transaction.atomic():
            inserted = _rows_insert(settlement_file, rows, chunk=chunk, progress=progress)
            settlement_file.finish()
            settlement_file.row_count = settlement_file.progress_total = settlement_file.progress_done = total
            settlement_file.skipped_count = total - inserted
            settlement_file.period_start, settlement_file.period_end = period_start, period_end
            settlement_file.finished_at = timezone.now()
            settlement_file.lease_until = None
            settlement_file.failure, settlement_file.error_report = "", []
            settlement_file.save(update_fields=["status", "row_count", "progress_total", "progress_done",
                                                "skipped_count", "period_start", "period_end", "finished_at",
                                                "lease_until", "failure", "error_report"])
    finally:
        progress.close()
    return settlement_file


def _error_lines(errors: list[RowError]) -> int:
    return len({error.line_no for error in errors if error.line_no > 0})


def _row_problems(result: ReadResult) -> list[RowError]:
    """What the database would refuse, said per row before anything is written (the reader's checks come first)."""
    problems = []
    for row in result.rows:
        if row.kind not in _KINDS:
            problems.append(RowError(row.line_no, "kind", _("Unknown row kind %(kind)s.") % {"kind": row.kind}))
        if not row.external_row_id:
            problems.append(RowError(row.line_no, "external_row_id", _("The row has no id.")))
        for name, limit in _TEXT_LIMITS.items():
            if len(getattr(row, name)) > limit:
                problems.append(RowError(row.line_no, name, _("Longer than %(limit)d characters.") % {"limit": limit}))
        if len(row.currency) != 3 or not row.currency.isalpha() or not row.currency.isupper():
            problems.append(RowError(row.line_no, "currency",
                                     _("%(currency)s is not a currency code.") % {"currency": row.currency}))
        for name in ("gross", "fee", "net"):
            amount = getattr(row, name)
            if not isinstance(amount, Decimal) or not amount.is_finite() or abs(amount) >= _AMOUNT_LIMIT:
                problems.append(RowError(row.line_no, name, _("The amount is out of range.")))
            elif amount != amount.quantize(_CENT):
                problems.append(RowError(row.line_no, name, _("The amount has more than two decimals.")))
        if timezone.is_naive(row.occurred_at):
            problems.append(RowError(row.line_no, "occurred_at", _("The time has no time zone.")))
    return problems


def _closed_months(settlement_file: SettlementFile, start: date | None, end: date | None) -> list[date]:
    """The closed months the file's rows fall in: closed for its store or for all stores. A bank statement
    (no store) carries payouts of every store, so any store's closed month refuses it."""
    if start is None:
        return []
    months = []
    month = start.replace(day=1)
    while month <= end:
        months.append(month)
        month = (month + timedelta(days=32)).replace(day=1)
    closed = FinancePeriod.objects.filter(month__in=months, status=FinancePeriodStatus.CLOSED)
    if settlement_file.store_id is not None:
        closed = closed.filter(Q(store_id=settlement_file.store_id) | Q(store__isnull=True))
    return sorted(set(closed.values_list("month", flat=True)))


def _fail(settlement_file: SettlementFile, failure: str, errors: list[RowError], *, row_count: int
          ) -> SettlementFile:
    with transaction.atomic():
        settlement_file.fail()
        settlement_file.failure = failure
        settlement_file.error_report = [{"line_no": error.line_no, "column": error.column, "message": error.message}
                                        for error in sorted(errors, key=lambda error: error.line_no)]
        settlement_file.row_count = row_count
        settlement_file.progress_done = settlement_file.progress_total = 0
        settlement_file.finished_at = timezone.now()
        settlement_file.lease_until = None
        settlement_file.save(update_fields=["status", "failure", "error_report", "row_count", "progress_done",
                                            "progress_total", "finished_at", "lease_until"])
    return settlement_file


class _ProgressWriter:
    """Writes progress_done of one file in its own short transactions on a second database connection."""

    def __init__(self, file_id: int, *, enabled: bool):
        self.file_id = file_id
        self._connection = connection.copy() if enabled else None
        self._ready = False

    def write(self, done: int) -> None:
        if self._connection is None:
            return
        try:
            with self._connection.cursor() as cursor:
                if not self._ready:
                    # Never wait behind a lock: a progress figure is not worth stalling the import for.
                    cursor.execute("SET lock_timeout = '2s'")
                    self._ready = True
                cursor.execute(f"UPDATE {SettlementFile._meta.db_table} SET progress_done = %s "
                               "WHERE id = %s AND progress_total >= %s", [done, self.file_id, done])
        except OperationalError:
            # The page shows an older figure for a while; the import itself goes on and ends at the total.
            logger.warning("settlement import %s: progress not written", self.file_id, exc_info=True)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()


_COLUMNS = ("file_id", "source", "external_row_id", "line_no", "kind", "payment_id", "platform_order_id",
            "merchant_order_no", "gross", "fee", "net", "currency", "occurred_at", "description", "raw")


def _rows_insert(settlement_file: SettlementFile, rows: list, *, chunk: int, progress: _ProgressWriter) -> int:
    """Insert the rows in chunks, skipping (source, external row id) pairs already stored; returns how many
    were inserted. PostgreSQL: COPY into a temporary table, then INSERT … ON CONFLICT DO NOTHING from it, a
    few times faster than multi-row INSERTs at 200,000 rows. Elsewhere (SQLite, the trial): bulk_create."""
    if connection.vendor == "postgresql":
        return _rows_copy(settlement_file, rows, chunk=chunk, progress=progress)
    before = SettlementRow.objects.filter(file=settlement_file).count()
    for start in range(0, len(rows), chunk):
        SettlementRow.objects.bulk_create(
            [SettlementRow(**dict(zip(_COLUMNS, _values(settlement_file, row), strict=True)))
             for row in rows[start:start + chunk]],
            batch_size=chunk, ignore_conflicts=True)
        progress.write(min(start + chunk, len(rows)))
    return SettlementRow.objects.filter(file=settlement_file).count() - before


def _values(settlement_file: SettlementFile, row) -> tuple:
    return (settlement_file.pk, settlement_file.source, clean_text(row.external_row_id), row.line_no, row.kind,
            clean_text(row.payment_id), clean_text(row.platform_order_id), clean_text(row.merchant_order_no),
            row.gross, row.fee, row.net, row.currency, row.occurred_at, clean_text(row.description),
            _clean_raw(row.raw))


def _clean_raw(raw: dict) -> dict:
    """The raw row without control characters. One regex pass over all its text decides: walking every key
    and value (clean_data) took a fifth of a 200,000-row import, and nearly every row has nothing to clean."""
    try:
        text = "".join(raw) + "".join(raw.values())
    except TypeError:  # a value that is not text: walk it
        return clean_data(dict(raw))
    return clean_data(dict(raw)) if has_control_chars(text) else raw


def _rows_copy(settlement_file: SettlementFile, rows: list, *, chunk: int, progress: _ProgressWriter) -> int:
    table = SettlementRow._meta.db_table
    columns = ", ".join(_COLUMNS)
    inserted = 0
    with connection.cursor() as cursor:
        # Dropped at commit or rollback: nothing is left behind whatever happens to the import.
        cursor.execute(f"CREATE TEMPORARY TABLE settlement_row_load ON COMMIT DROP AS "
                       f"SELECT {columns} FROM {table} WITH NO DATA")
        for start in range(0, len(rows), chunk):
            buffer = io.StringIO()
            # Every value quoted: an empty string stays an empty string (COPY reads an unquoted empty as NULL);
            # no column here is nullable.
            writer = csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\n")
            for row in rows[start:start + chunk]:
                values = _values(settlement_file, row)
                writer.writerow([*values[:8], format(values[8], "f"), format(values[9], "f"), format(values[10], "f"),
                                 values[11], values[12].isoformat(), values[13],
                                 json.dumps(values[14], ensure_ascii=False)])
            buffer.seek(0)
            cursor.cursor.copy_expert(f"COPY settlement_row_load ({columns}) FROM STDIN WITH (FORMAT csv)", buffer)
            cursor.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM settlement_row_load "
                           "ON CONFLICT (source, external_row_id) DO NOTHING")
            inserted += cursor.rowcount
            cursor.execute("TRUNCATE settlement_row_load")
            progress.write(min(start + chunk, len(rows)))
        cursor.execute("DROP TABLE settlement_row_load")
    return inserted


def settlement_file_import(*, source: str, data: bytes, file_name: str, user=None, store: Store | None = None,
                           mapping: BankMapping | None = None) -> SettlementFile:
    """Upload and import in one go (commands, the benchmark, small files): the file imported, or failed with
    its error report for row errors. A file seen before and a closed period are refused with a DomainError
    (the failed file stays, with the reason, for the imports page)."""
    settlement_file = settlement_file_upload(source=source, data=data, file_name=file_name, user=user, store=store,
                                             bank_mapping=mapping)
    result = settlement_import_run(file_id=settlement_file.pk)
    if result is None:  # cannot happen for a file made just now; said rather than returned as None
        raise SettlementImportError(_("The file is being imported by another worker."),
                                    code="settlement_import_busy")
    if result.failure == ImportFailure.PERIOD_CLOSED:
        raise SettlementImportError(result.error_report[0]["message"], code="finance_period_closed",
                                    data={"file_id": result.pk})
    return result


def settlement_files_due(*, now=None) -> list[int]:
    """Files whose import should run and is not running: pending past the grace time (the queued message
    was lost) or importing past the lease (the worker died). The sweeper queues them again."""
    now = now or timezone.now()
    return list(SettlementFile.objects.filter(
        Q(status=SettlementFileStatus.PENDING, uploaded_at__lt=now - PENDING_GRACE)
        | Q(status=SettlementFileStatus.IMPORTING, lease_until__lt=now)).order_by("pk").values_list("pk", flat=True))
