"""Desk reads: one search box over orders by number, platform id, phone, last four digits, tracking, RMA or name."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from django.db.models import F, Lookup, QuerySet, TextChoices, Value
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from aftersales.models import Ticket
from fulfillment.models import ShipmentLine
from oms.exceptions import ValidationFailed
from oms.guard import has_control_chars
from oms.pii import can_view_pii, mask_name, mask_phone
from orders.models import Order

PAGE_SIZE = 20
# Each kind contributes at most this many orders, newest first: a query matching more (a common surname, a
# popular last four) is answered at once and the page says to narrow it down.
MAX_PER_KIND = 200
MAX_QUERY_LENGTH = 64
# Under three characters a name is matched by prefix (btree text_pattern_ops); from three on anywhere in
# the name (pg_trgm GIN): a trigram index cannot serve shorter patterns.
NAME_TRIGRAM_FROM = 3

_DIGITS_4 = re.compile(r"\d{4}")
_MOBILE = re.compile(r"1\d{10}")
_IDENTIFIER = re.compile(r"[A-Za-z0-9_\-]+")
_PHONE_PUNCTUATION = re.compile(r"[\s\-()]")


class SearchKind(TextChoices):
    """What a query matched, in rank order: a unique key first, a name last."""

    ORDER_NUMBER = "order_number", gettext_lazy("Order number")
    PLATFORM_ORDER_ID = "platform_order_id", gettext_lazy("Platform order id")
    TRACKING_NUMBER = "tracking_number", gettext_lazy("Tracking number")
    RMA_NUMBER = "rma_number", gettext_lazy("RMA number")
    PHONE = "phone", gettext_lazy("Phone number")
    PHONE_ENCRYPTED = "phone_encrypted", gettext_lazy("Last four digits of an encrypted phone")
    LAST_FOUR = "last_four", gettext_lazy("Last four digits of the phone")
    RECEIVER_NAME = "receiver_name", gettext_lazy("Receiver name")
    BUYER_NAME = "buyer_name", gettext_lazy("Buyer name")


_RANK = {kind: rank for rank, kind in enumerate(SearchKind)}


@dataclass
class DeskSearchHit:
    order: Order
    kinds: list[SearchKind]
    receiver_name: str
    receiver_phone: str
    note: str = ""

    @property
    def matched(self) -> str:
        return ", ".join(str(kind.label) for kind in self.kinds)


@dataclass
class DeskSearchResult:
    query: str
    kinds: list[SearchKind] = field(default_factory=list)
    hits: list[DeskSearchHit] = field(default_factory=list)
    page: int = 1
    pages: int = 0
    total: int = 0
    # Some kind found more than MAX_PER_KIND orders: only the newest are listed.
    capped: bool = False


class _ILike(Lookup):
    """Case-insensitive LIKE that PostgreSQL serves from a gin_trgm_ops index.

    Django's icontains compares UPPER(column), which no trigram index on the column can serve. SQLite's LIKE
    is already case-insensitive for ASCII.
    """

    lookup_name = "desk_ilike"
    prepare_rhs = False

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        operator = "ILIKE" if connection.vendor == "postgresql" else "LIKE"
        return f"{lhs} {operator} {rhs} ESCAPE '\\'", [*lhs_params, *rhs_params]


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def desk_search_classify(*, query: str) -> list[SearchKind]:
    """The kinds of key ``query`` can be, best first; each becomes one indexed lookup."""
    text = query.strip()
    if not text:
        return []
    compact = _PHONE_PUNCTUATION.sub("", text)
    kinds: list[SearchKind] = []
    if _DIGITS_4.fullmatch(compact):
        # Four digits are a phone's last four; manual stores may also number their orders so.
        return [SearchKind.PLATFORM_ORDER_ID, SearchKind.LAST_FOUR]
    if _IDENTIFIER.fullmatch(text):
        # Unique keys are one index probe each, so every one of them is tried rather than guessed from a
        # prefix: platforms and carriers share formats (long digit strings).
        kinds += [SearchKind.ORDER_NUMBER, SearchKind.PLATFORM_ORDER_ID, SearchKind.TRACKING_NUMBER,
                  SearchKind.RMA_NUMBER]
    if _MOBILE.fullmatch(_national_phone(compact)):
        kinds += [SearchKind.PHONE, SearchKind.PHONE_ENCRYPTED]
    if not any(char.isdigit() for char in text):
        kinds += [SearchKind.RECEIVER_NAME, SearchKind.BUYER_NAME]
    return sorted(set(kinds), key=_RANK.__getitem__)


def _national_phone(compact: str) -> str:
    for prefix in ("+86", "0086"):
        if compact.startswith(prefix):
            return compact[len(prefix):]
    return compact


def _newest_ids(queryset: QuerySet) -> list[int]:
    return list(queryset.order_by("-placed_at", "-id").values_list("id", flat=True)[:MAX_PER_KIND])


def _order_ids(kind: SearchKind, text: str) -> list[int]:
    """The ids of the orders one kind of key finds, newest first (at most MAX_PER_KIND)."""
    keys = sorted({text, text.upper()})  # numbers are upper case; a typed "so000123" still finds its order
    orders = Order.objects.all()
    if kind == SearchKind.ORDER_NUMBER:
        return _newest_ids(orders.filter(number__in=keys))
    if kind == SearchKind.PLATFORM_ORDER_ID:
        return _newest_ids(orders.filter(platform_order_id=text))
    if kind == SearchKind.TRACKING_NUMBER:
        # Our parcels' tracking numbers, and the buyer's return parcel on an after-sales ticket ("where is the
        # return I sent?"): both indexed.
        shipped = ShipmentLine.objects.filter(shipment__tracking_number__in=keys).values_list("order_id", flat=True)
        returned = Ticket.objects.filter(return_tracking_number__in=keys).values_list("order_id", flat=True)
        return _newest_ids(orders.filter(id__in={*shipped[:MAX_PER_KIND], *returned[:MAX_PER_KIND]}))
    if kind == SearchKind.RMA_NUMBER:
        return _newest_ids(orders.filter(id__in=Ticket.objects.filter(number__in=keys).values("order_id")))
    phone = _national_phone(_PHONE_PUNCTUATION.sub("", text))
    if kind == SearchKind.PHONE:
        return _newest_ids(orders.filter(receiver_phone__in=sorted({phone, text})))
    if kind == SearchKind.PHONE_ENCRYPTED:
        # PDD and Douyin send only a masked copy (138****1234): its last four is all there is to compare.
        return _newest_ids(orders.filter(receiver_phone_last4=phone[-4:], receiver_phone__contains="*"))
    if kind == SearchKind.LAST_FOUR:
        return _newest_ids(orders.filter(receiver_phone_last4=phone))
    column = "receiver_name" if kind == SearchKind.RECEIVER_NAME else "buyer_name"
    if len(text) < NAME_TRIGRAM_FROM:
        return _newest_ids(orders.filter(**{f"{column}__startswith": text}))
    return _newest_ids(orders.filter(_ILike(F(column), Value(f"%{_like_escape(text)}%"))))


def desk_search(*, query: str, user, page: int = 1) -> DeskSearchResult:
    """Orders matching ``query`` ranked by what matched (unique keys, phone, last four, names), one page.

    The receiver is masked unless ``user`` may see personal data.
    """
    text = (query or "").strip()
    if len(text) > MAX_QUERY_LENGTH:
        raise ValidationFailed(_("Search for at most %(limit)s characters.") % {"limit": MAX_QUERY_LENGTH},
                               code="search_query_too_long")
    if has_control_chars(text):
        raise ValidationFailed(_("The search holds a control character; remove it and try again."),
                               code="search_query_invalid")
    result = DeskSearchResult(query=text, kinds=desk_search_classify(query=text))
    matched: dict[int, list[SearchKind]] = {}
    for kind in result.kinds:
        ids = _order_ids(kind, text)
        result.capped = result.capped or len(ids) >= MAX_PER_KIND
        for order_id in ids:
            matched.setdefault(order_id, []).append(kind)
    result.total = len(matched)
    result.pages = math.ceil(result.total / PAGE_SIZE)
    result.page = min(max(page, 1), max(result.pages, 1))
    page_ids = list(matched)[(result.page - 1) * PAGE_SIZE:result.page * PAGE_SIZE]
    orders = Order.objects.select_related("store").in_bulk(page_ids)
    show_pii = can_view_pii(user)
    for order_id in page_ids:
        order = orders[order_id]
        kinds = matched[order_id]
        note = ""
        if SearchKind.PHONE_ENCRYPTED in kinds:
            note = _("The platform encrypts this receiver's phone: only its last four digits match, so this may "
                     "be another person.")
        result.hits.append(DeskSearchHit(
            order=order, kinds=kinds,
            receiver_name=order.receiver_name if show_pii else mask_name(order.receiver_name),
            receiver_phone=order.receiver_phone if show_pii else mask_phone(order.receiver_phone),
            note=note))
    return result
