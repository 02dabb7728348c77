"""Settlement and bank-statement readers: ``read(source, data)`` turns a file as the provider exports it into rows.

Each reader returns a ReadResult (rows it could read, a RowError per row it could not, what the file says about
itself) and raises ReaderFailure when the file is not that format at all. The importer decides what to do with
row errors (it imports all or nothing); readers never stop at the first bad row. Formats: docs/finance.md.
"""

from __future__ import annotations

from django.utils.translation import gettext as _

from finance.readers.alipay import read_alipay
from finance.readers.bank import read_bank
from finance.readers.base import (
    BankColumnMapping,
    ParsedRow,
    ReaderFailure,
    ReadResult,
    RowError,
    RowKind,
    SettlementSource,
)
from finance.readers.douyin import read_douyin
from finance.readers.pdd import read_pdd
from finance.readers.shopify_payouts import read_shopify_payouts
from finance.readers.wechat_pay import read_wechat_pay

__all__ = [
    "BankColumnMapping",
    "ParsedRow",
    "ReadResult",
    "ReaderFailure",
    "RowError",
    "RowKind",
    "SettlementSource",
    "read",
]

READERS = {
    SettlementSource.SHOPIFY_PAYOUTS: read_shopify_payouts,
    SettlementSource.ALIPAY: read_alipay,
    SettlementSource.WECHAT_PAY: read_wechat_pay,
    SettlementSource.DOUYIN: read_douyin,
    SettlementSource.PDD: read_pdd,
}

# Byte-order marks and blank space: a file of only these has nothing in it.
_EMPTY_NOISE = b"\xef\xbb\xbf\xff\xfe \t\r\n\x00"


def read(source: str, data: bytes, *, mapping: BankColumnMapping | None = None,
         result: ReadResult | None = None) -> ReadResult:
    """Read one uploaded file of ``source`` (a SettlementSource value); ``mapping`` is required for bank statements.

    ``result`` receives what is read when given: its ``rows`` may be any list whose append takes each row as it
    is read (the import streams rows into the database while the rest of the file is still being read).

    An empty file is not a failure of format but a file with nothing to import: it comes back as one RowError
    (line 0) so the import report says so next to the file name."""
    if source not in SettlementSource.values:
        raise ReaderFailure(_("Unknown settlement source “%(source)s”.") % {"source": source})
    if not data.strip(_EMPTY_NOISE):
        return ReadResult(errors=[RowError(line_no=0, column="", message=_("The file is empty."))])
    if source == SettlementSource.BANK:
        return read_bank(data, mapping, result)
    return READERS[SettlementSource(source)](data, result)
