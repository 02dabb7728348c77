"""Settlement file import: upload (refusing a file seen before), then read and load all-or-nothing with progress."""

from __future__ import annotations

import gc
import hashlib
import logging
import queue
import re
import threading
import zlib
from contextlib import contextmanager
from datetime import date, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import orjson
import psycopg2
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
from finance.readers.tabular import is_xlsx
from oms.exceptions import DomainError
from oms.guard import clean_text, has_control_chars
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
# An import of at least this many rows refreshes the table's statistics (autovacuum would, minutes later).
ANALYZE_AFTER_ROWS = 10_000
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
                sha256=digest, size=len(data), content=zlib.compress(data, 1), content_compressed=True,
                uploaded_by=user)
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
    with _no_cycle_collection():
        if connection.vendor == "postgresql" and not connection.in_atomic_block:
            imported = _streamed_import(settlement_file, chunk=STREAM_CHUNK)
            if imported is not None:
                return imported
        # SQLite, a caller's transaction, or a file the streamed pass found not clean (row errors, a closed
        # month, rows another import stored meanwhile): read it whole, then load it with its full error report.
        return settlement_file_load(settlement_file=settlement_file, result=_read(settlement_file), chunk=chunk)


class _NotClean(Exception):
    """The streamed pass stops: the file goes the careful way (settlement_file_load) instead."""


def _streamed_import(settlement_file: SettlementFile, *, chunk: int) -> SettlementFile | None:
    """Import a clean file in one pass, storing rows while the rest of the file is still being read; None (and
    nothing stored) when the file is not clean, for settlement_file_load to import or refuse with its report.

    The reading (Python) and the storing (the database's COPY, index upkeep) run side by side: a copier thread
    feeds COPY from chunks the reader hands over, so the database works on one chunk while the next is read.
    Only the copier thread uses the database connection until it is done."""
    mapping = settlement_file.bank_mapping.column_mapping() if settlement_file.bank_mapping else None
    data = settlement_file.original_bytes()
    total = 0
    progress = _ProgressWriter(settlement_file.pk, enabled=True)
    # The rows are not counted before they are read: the bar runs against the file's line count meanwhile (an
    # .xlsx has none to count: its bar jumps to the end when it is done).
    progress.set_total(0 if is_xlsx(data) else data.count(b"\n"))
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")  # see settlement_file_load
                # Each row's file reference is checked as the row is stored, while the reading goes on, instead
                # of all at the commit (Django makes foreign keys deferred): two seconds at 200,000 rows that
                # the commit would otherwise spend alone.
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            copier = _Copier(settlement_file, connection.connection)
            sink = _StreamSink(copier, chunk=chunk, progress=progress)
            result = ReadResult(rows=sink)
            copier.start()
            try:
                returned = readers.read(settlement_file.source, data, mapping=mapping, result=result)
                sink.flush()
            except ReaderFailure:
                copier.cancel()
                raise _NotClean from None
            except BaseException:
                # Whatever stops the reading (a row error, Ctrl-C, a time limit): the copier drops what it still
                # holds and ends before the transaction is rolled back on the connection it uses.
                copier.cancel()
                raise
            finally:
                copier.finish()
            # Every row handed over stored or skipped, by a copier that is done: else the pass is not trusted.
            if (copier.error is not None or copier.is_alive() or copier.handled != copier.handed
                    or copier.handed != len(sink) or returned is not result or result.errors or not sink.clean):
                raise _NotClean
            total = len(sink)
            moments = [row.occurred_at for row in sink]
            local = ZoneInfo(settings.TIME_ZONE)
            period = ((timezone.localtime(min(moments), local).date(), timezone.localtime(max(moments), local).date())
                      if moments else (None, None))
            if _closed_months(settlement_file, *period):
                raise _NotClean
            _file_imported(settlement_file, result, total=total, inserted=copier.inserted, period=period)
    except _NotClean:
        return None
    finally:
        progress.close()
    if copier.inserted >= ANALYZE_AFTER_ROWS:
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {SettlementRow._meta.db_table}")
    return settlement_file


# Rows per chunk the reader hands the copier: small enough that the database starts early and the two overlap,
# large enough that the per-chunk id check and COPY statement cost little.
STREAM_CHUNK = 20_000


class _StreamSink(list):
    """The rows list the reader appends to: every row is kept (for the period and the count), checked, and
    handed to the copier in chunks. A row the database would refuse stops the handing over (the file will be
    read again the careful way)."""

    def __init__(self, copier: _Copier, *, chunk: int, progress: _ProgressWriter):
        super().__init__()
        self.copier, self.chunk, self.progress, self.clean = copier, chunk, progress, True
        self._pending: list = []

    def append(self, row) -> None:
        super().append(row)
        if _problems_of(row):
            # Stop reading now: the careful path reads the file again and reports every bad row.
            self.clean = False
            raise _NotClean
        self._pending.append(row)
        if len(self._pending) >= self.chunk:
            self.flush()

    def flush(self) -> None:
        if self.copier.error is not None:
            raise _NotClean  # storing failed (rows another import stored meanwhile…): no point reading on
        if self._pending:
            self.copier.put(self._pending)
            self.progress.write(len(self))
        self._pending = []


class _Copier(threading.Thread):
    """Stores chunks of rows through one psycopg2 connection (the import's, inside its transaction): for each,
    the ids already stored (by another file, or an earlier chunk of this one) are left out, the rest COPY'd.

    It never leaves the reader waiting: after an error or a cancel it keeps taking chunks and drops them. The
    reader trusts the pass only when every row it handed over was handled (``handled == handed``)."""

    def __init__(self, settlement_file: SettlementFile, raw_connection):
        super().__init__(name=f"settlement-copier-{settlement_file.pk}", daemon=True)
        self.settlement_file, self.raw_connection = settlement_file, raw_connection
        self.chunks: queue.Queue = queue.Queue(maxsize=2)
        self.cancelled = threading.Event()
        self.handed = self.handled = self.inserted = 0
        self.error: BaseException | None = None

    def put(self, rows: list) -> None:
        self.handed += len(rows)
        while True:
            try:
                self.chunks.put(rows, timeout=1)
                return
            except queue.Full:
                if not self.is_alive():
                    raise _NotClean from None

    def cancel(self) -> None:
        """Drop the chunks not yet stored. The one being stored ends first (a second or so): the database is not
        asked to cancel it, since a cancel arriving late would hit the next statement on the connection."""
        self.cancelled.set()

    def finish(self) -> None:
        """Tell the copier there is no more and wait for it to end."""
        while self.is_alive():
            try:
                self.chunks.put(None, timeout=1)
                break
            except queue.Full:
                continue
        self.join()

    def run(self) -> None:
        cursor = None
        try:
            cursor = self.raw_connection.cursor()
        except BaseException as exc:  # noqa: BLE001 - reported to the reader through self.error
            self.error = exc
        while (rows := self.chunks.get()) is not None:
            if self.error is not None or self.cancelled.is_set():
                continue
            try:
                self._store(cursor, rows)
                self.handled += len(rows)
            except BaseException as exc:  # noqa: BLE001 - handed to the reader, which gives the pass up
                self.error = exc
        if cursor is not None:
            try:
                cursor.close()
            except Exception:  # noqa: BLE001 - a cursor of a broken connection: the transaction rolls back anyway
                logger.debug("settlement copier: cursor not closed", exc_info=True)

    def _store(self, cursor, rows: list) -> None:
        table, columns = SettlementRow._meta.db_table, ", ".join(_COLUMNS)
        prefix = f"{self.settlement_file.pk}{_COPY_DELIMITER}{self.settlement_file.source}{_COPY_DELIMITER}"
        fresh = _rows_not_stored(self.settlement_file, rows, cursor=cursor)
        stream = _CopyStream(prefix + _copy_line(row) for row in fresh)
        cursor.copy_expert(f"COPY {table} ({columns}) FROM STDIN WITH (FORMAT text, DELIMITER E'\\x1f')", stream)
        self.inserted += len(fresh)


@contextmanager
def _no_cycle_collection():
    """Python's cycle collector paused while a file's rows are read and stored: 200,000 new row objects (none
    in a cycle) would set it off thousands of times, each pass walking every object made so far (a quarter of
    the reading time). Reference counting still frees everything; the collector runs again afterwards."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


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
        return readers.read(settlement_file.source, settlement_file.original_bytes(), mapping=mapping)
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
    # The first and last moment, then their local days: the same days as converting every row, in one pass.
    moments = [row.occurred_at for row in rows]
    period_start, period_end = ((timezone.localtime(min(moments), local).date(),
                                 timezone.localtime(max(moments), local).date()) if moments else (None, None))
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
    owns_transaction = not connection.in_atomic_block
    try:
        for attempt in range(2):
            try:
                with transaction.atomic():
                    if owns_transaction and connection.vendor == "postgresql":
                        # The commit does not wait for the WAL flush (seconds at 200,000 rows). A crash in the
                        # moment after it loses the import, never corrupts it: the file is then still
                        # "importing" under its lease, and the sweeper imports it again.
                        with connection.cursor() as cursor:
                            cursor.execute("SET LOCAL synchronous_commit TO OFF")
                    inserted = _rows_insert(settlement_file, rows, chunk=chunk, progress=progress)
                    _file_imported(settlement_file, result, total=total, inserted=inserted,
                                   period=(period_start, period_end))
                    break
            except (IntegrityError, psycopg2.IntegrityError):
                # Another import stored some of the same (source, row id) meanwhile: once it has committed, a
                # second pass skips them.
                if attempt:
                    raise
                logger.info("settlement import %s: rows stored by a concurrent import, reading again",
                            settlement_file.pk)
    finally:
        progress.close()
    if inserted >= ANALYZE_AFTER_ROWS and connection.vendor == "postgresql":
        # Statistics for the matching that follows: without them the planner takes a month's rows for a handful
        # and picks nested loops (matching took three times as long right after a 200,000-row import).
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {SettlementRow._meta.db_table}")
    return settlement_file


def _file_imported(settlement_file: SettlementFile, result: ReadResult, *, total: int, inserted: int,
                   period: tuple[date | None, date | None]) -> None:
    """Mark the file imported, in the transaction that stored its rows."""
    settlement_file.finish()
    settlement_file.row_count = settlement_file.progress_total = settlement_file.progress_done = total
    settlement_file.skipped_count = total - inserted
    settlement_file.period_start, settlement_file.period_end = period
    settlement_file.finished_at = timezone.now()
    settlement_file.lease_until = None
    settlement_file.failure, settlement_file.error_report = "", []
    settlement_file.raw_columns = result.columns
    settlement_file.save(update_fields=["status", "row_count", "progress_total", "progress_done", "skipped_count",
                                        "period_start", "period_end", "finished_at", "lease_until", "failure",
                                        "error_report", "raw_columns"])


def _error_lines(errors: list[RowError]) -> int:
    return len({error.line_no for error in errors if error.line_no > 0})


def _row_problems(result: ReadResult) -> list[RowError]:
    """What the database would refuse, said per row before anything is written (the reader's checks come first)."""
    problems = []
    for row in result.rows:
        problems.extend(_problems_of(row))
    return problems


def _problems_of(row) -> list[RowError]:
    problems = []
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

    def set_total(self, total: int) -> None:
        """The bar's end, while the rows are still being counted (the streamed import)."""
        if self._connection is None:
            return
        try:
            with self._connection.cursor() as cursor:
                cursor.execute(f"UPDATE {SettlementFile._meta.db_table} SET progress_total = %s, progress_done = 0 "
                               "WHERE id = %s", [total, self.file_id])
        except OperationalError:
            logger.warning("settlement import %s: progress not written", self.file_id, exc_info=True)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()


_COLUMNS = ("file_id", "source", "external_row_id", "line_no", "kind", "payment_id", "platform_order_id",
            "merchant_order_no", "gross", "fee", "net", "currency", "occurred_at", "description", "raw")


def _rows_insert(settlement_file: SettlementFile, rows: list, *, chunk: int, progress: _ProgressWriter) -> int:
    """Insert the rows in chunks, skipping (source, external row id) pairs already stored and repeated within
    the file; returns how many were inserted. PostgreSQL: COPY straight into the table (a few times faster than
    multi-row INSERTs at 200,000 rows). Elsewhere (SQLite, the trial): bulk_create."""
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


def _clean_raw(raw: list[str]) -> list[str]:
    """The raw cells without control characters. One regex pass over all of them decides: cleaning every cell
    took a fifth of a 200,000-row import, and nearly every row has nothing to clean."""
    return [clean_text(cell) for cell in raw] if has_control_chars("".join(raw)) else raw


def _rows_not_stored(settlement_file: SettlementFile, rows: list, cursor=None) -> list:
    """The rows to insert: the first of each external row id in the file, and none the source already has.

    One query for the whole file (the ids travel as one text, split by the database: a 200,000-element array
    literal costs more to build than the lookup). A concurrent import storing the same ids meanwhile is caught
    by the unique constraint (see settlement_file_load)."""
    first: dict[str, object] = {}
    for row in rows:
        first.setdefault(clean_text(row.external_row_id), row)
    query = (f"SELECT external_row_id FROM {SettlementRow._meta.db_table} "
             "WHERE source = %s AND external_row_id = ANY(string_to_array(%s, %s))")
    params = [settlement_file.source, _ID_SEPARATOR.join(first), _ID_SEPARATOR]
    if cursor is None:
        with connection.cursor() as cursor:
            cursor.execute(query, params)
            stored = cursor.fetchall()
    else:  # the streaming import's own psycopg2 cursor, in its copier thread
        cursor.execute(query, params)
        stored = cursor.fetchall()
    for (external_row_id,) in stored:
        first.pop(external_row_id, None)
    return list(first.values())


# Joins the ids of _rows_not_stored: a control character, so clean_text has taken it out of every id.
_ID_SEPARATOR = "\x1f"


def _rows_copy(settlement_file: SettlementFile, rows: list, *, chunk: int, progress: _ProgressWriter) -> int:
    table = SettlementRow._meta.db_table
    columns = ", ".join(_COLUMNS)
    fresh = _rows_not_stored(settlement_file, rows)
    skipped = len(rows) - len(fresh)
    prefix = f"{settlement_file.pk}{_COPY_DELIMITER}{settlement_file.source}{_COPY_DELIMITER}"
    with connection.cursor() as cursor:
        for start in range(0, len(fresh), chunk):
            # The lines are made as COPY reads them, so the database stores one part while the next is made.
            stream = _CopyStream(prefix + _copy_line(row) for row in fresh[start:start + chunk])
            cursor.cursor.copy_expert(f"COPY {table} ({columns}) FROM STDIN WITH (FORMAT text, DELIMITER "
                                      f"E'\\x1f')", stream)
            progress.write(skipped + min(start + chunk, len(fresh)))
    return len(fresh)


# COPY's text format with the unit separator between values: a character no cleaned value holds, so a line
# needs no escaping at all unless a value has a backslash or a control character (checked on the whole line).
_COPY_DELIMITER = "\x1f"
_COPY_FIELDS = len(_COLUMNS)
_COPY_NEEDS_ESCAPING = re.compile("[\x00-\x1e\x7f\\\\]")


def _copy_line(row) -> str:
    """One row as a line of COPY text (file id and source are the caller's prefix)."""
    values = (row.external_row_id, str(row.line_no), row.kind, row.payment_id, row.platform_order_id,
              row.merchant_order_no, str(row.gross), str(row.fee), str(row.net), row.currency,
              row.occurred_at.isoformat(), row.description, orjson.dumps(row.raw).decode())
    line = _COPY_DELIMITER.join(values)
    if _COPY_NEEDS_ESCAPING.search(line) or line.count(_COPY_DELIMITER) != _COPY_FIELDS - 3:
        line = _COPY_DELIMITER.join(_copy_escape(value) for value in (
            clean_text(row.external_row_id), str(row.line_no), row.kind, clean_text(row.payment_id),
            clean_text(row.platform_order_id), clean_text(row.merchant_order_no), str(row.gross), str(row.fee),
            str(row.net), row.currency, row.occurred_at.isoformat(), clean_text(row.description),
            orjson.dumps(_clean_raw(row.raw)).decode()))
    return line + "\n"


def _copy_escape(value: str) -> str:
    """A value for COPY text: backslash, line breaks, tab and the delimiter written as COPY's escapes."""
    return (value.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
            .replace(_COPY_DELIMITER, "\\x1f"))


class _CopyStream:
    """A file COPY reads: lines made on demand from an iterator, in blocks of about the size asked for."""

    def __init__(self, lines):
        self._lines = iter(lines)
        self._rest = ""

    def read(self, size: int = -1) -> str:
        parts, length = [self._rest], len(self._rest)
        for line in self._lines:
            parts.append(line)
            length += len(line)
            if 0 <= size <= length:
                break
        text = "".join(parts)
        if 0 <= size < len(text):
            text, self._rest = text[:size], text[size:]
        else:
            self._rest = ""
        return text

    def readline(self) -> str:  # part of the file interface psycopg2 accepts; COPY FROM uses read
        return self.read()


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
