"""Reads of the warehouse kanban: every column's count in one query, and one page of cards per column."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time

from django.db import connection
from django.db.models import Q, QuerySet
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext_lazy

from fulfillment.models import KANBAN_COLUMNS, Shipment, ShipmentStatus
from fulfillment.selectors import shipment_held_q, shipment_holds
from inventory.models import Warehouse
from orders.models import Platform

SS = ShipmentStatus
PAGE = 40
# Lane counts stop here (the board then says "999+"): counting costs the same whatever the board's size.
COUNT_CAP = 1000
# A card due within this many seconds is shown as "due soon" (amber); past its due time it is overdue (red).
DUE_SOON_SECONDS = 2 * 3600

# The buttons of a card: the usual next step first. The service decides in the end (e.g. "pack" is refused
# until every item is scanned), so these only follow the transition graph and never query. Labels reuse the
# state machine's msgids so they translate once.
_NEXT = {
    SS.TO_PICK: [(SS.PICKING, gettext_lazy("Start picking"))],
    SS.PICKING: [(SS.PACKED, gettext_lazy("Pack")), (SS.TO_PICK, gettext_lazy("Back to pick"))],
    SS.PACKED: [(SS.SHIPPED, gettext_lazy("Ship"))],
    SS.SHIPPED: [],
    SS.EXCEPTION: [(SS.TO_PICK, gettext_lazy("Resolve: back to pick"))],
}
_CAN_RAISE_EXCEPTION = {SS.TO_PICK, SS.PICKING, SS.PACKED, SS.SHIPPED}

# Parcels waiting to be picked whose order is on hold (or back before fulfilment) leave "To pick" for a lane
# of their own: they cannot be started, and at the top of "To pick" (often the most overdue) they hid the
# work that can. The lane comes last: it is not work for the warehouse until the order is released.
HELD = "held"
HELD_LABEL = pgettext_lazy("kanban lane", "On hold")
LANES = [*(str(status) for status in KANBAN_COLUMNS), HELD]
# Cards in these columns take a tracking number typed or scanned on the card (before it ships).
_TRACKING_STATES = {SS.TO_PICK, SS.PICKING, SS.PACKED}


@dataclass(frozen=True)
class KanbanFilters:
    """What the board's filter form selected; None / "" means any."""

    carrier_id: int | None = None
    channel: str = ""
    min_priority: int | None = None
    # The viewer's store scope (inventory.selectors.store_ids_for_user); None: every store.
    store_ids: frozenset[int] | None = None

    def q(self) -> Q:
        q = Q()
        if self.store_ids is not None:
            q &= Q(store_id__in=self.store_ids)
        if self.carrier_id is not None:
            q &= Q(carrier_id=self.carrier_id)
        if self.channel:
            q &= Q(platform=self.channel)
        if self.min_priority:
            q &= Q(priority__gte=self.min_priority)
        return q


@dataclass
class KanbanCard:
    """A shipment with what its card shows, computed without further queries."""

    shipment: Shipment
    channel: str
    age: str
    sla: str
    overdue: bool
    due_soon: bool
    moves: list[tuple[str, str]]
    can_raise_exception: bool
    move_url: (
        str  # reversed once here: a card uses it five times, and reverse() is a visible share of the page
    )
    # Why the parcel waits (its held orders and their hold reasons); "" for a parcel that can be worked on.
    hold: str = ""
    takes_tracking: bool = False

    @property
    def tracking_url(self) -> str:
        # Next to the move URL (…/shipments/<id>/move/): derived, not reversed again, for the same reason.
        return self.move_url.removesuffix("move/") + "tracking/"

    @property
    def sla_due_ms(self) -> int:
        return int(self.shipment.sla_due_at.timestamp() * 1000)

    @property
    def created_ms(self) -> int:
        return int(self.shipment.created_at.timestamp() * 1000)


@dataclass
class KanbanColumn:
    status: str
    label: str
    count: int | None
    cards: list[KanbanCard] = field(default_factory=list)
    page: int = 1
    has_more: bool = False

    @property
    def count_display(self) -> str:
        return count_display(self.count)

    @property
    def next_page(self) -> int:
        return self.page + 1


@dataclass
class KanbanBoard:
    warehouse: Warehouse
    columns: list[KanbanColumn]


# --- Durations, as the card shows them (kanban.js ticks them with the same formats) -----------------


def duration_formats() -> dict[str, str | int]:
    """The translated formats, for the page's JavaScript to tick the countdowns the same way."""
    return {
        "dh": _("%(days)sd %(hours)sh"),
        "hm": _("%(hours)sh %(minutes)sm"),
        "m": _("%(minutes)sm"),
        "due": _("due in %(time)s"),
        "overdue": _("overdue %(time)s"),
        "age": _("age %(time)s"),
        "due_soon_ms": DUE_SOON_SECONDS * 1000,
    }


def duration_short(seconds: float) -> str:
    """A duration that fits a card on a phone: "2d 3h", "5h 12m" or "7m"."""
    minutes = int(abs(seconds) // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return _("%(days)sd %(hours)sh") % {"days": days, "hours": hours}
    if hours:
        return _("%(hours)sh %(minutes)sm") % {"hours": hours, "minutes": minutes}
    return _("%(minutes)sm") % {"minutes": minutes}


def kanban_card(shipment: Shipment, *, now: datetime | None = None, hold: str = "") -> KanbanCard:
    now = now or timezone.now()
    left = (shipment.sla_due_at - now).total_seconds()
    remaining = duration_short(left)
    status = shipment.status
    # A held parcel offers no move: the order must be released first (the service would refuse anyway).
    moves = [] if hold else list(_NEXT.get(status, []))
    if status == SS.EXCEPTION and shipment.status_before_exception == SS.SHIPPED:
        moves = [(SS.SHIPPED, gettext_lazy("Resolve: still in transit"))]
    if status in (SS.SHIPPED, SS.DELIVERED) and shipment.shipped_at:
        # Handed over: the promise was kept or not; nothing counts down any more.
        shipped = timezone.localtime(shipment.shipped_at).strftime("%H:%M")
        late = (shipment.shipped_at - shipment.sla_due_at).total_seconds()
        sla = (_("shipped %(time)s, %(late)s late") % {"time": shipped, "late": duration_short(late)} if late > 0
               else _("shipped %(time)s, on time") % {"time": shipped})
        left = None
    else:
        sla = (_("overdue %(time)s") if left < 0 else _("due in %(time)s")) % {"time": remaining}
    return KanbanCard(
        shipment=shipment,
        channel=Platform(shipment.platform).label
        if shipment.platform in Platform.values
        else shipment.platform,
        age=_("age %(time)s") % {"time": duration_short((now - shipment.created_at).total_seconds())},
        sla=sla,
        overdue=left is not None and left < 0,
        due_soon=left is not None and 0 <= left < DUE_SOON_SECONDS,
        moves=[(str(to), str(label)) for to, label in moves],
        can_raise_exception=status in _CAN_RAISE_EXCEPTION,
        move_url=reverse("fulfillment:shipment-move", args=[shipment.pk]),
        hold=hold,
        takes_tracking=status in _TRACKING_STATES,
    )


# --- Selectors -------------------------------------------------------------------------------------


def start_of_today() -> datetime:
    """Midnight today in the display zone (Asia/Shanghai), as an aware datetime."""
    zone = timezone.get_default_timezone()
    return datetime.combine(timezone.localdate(timezone.now(), zone), time.min, tzinfo=zone)


def _column_q(status: str, since: datetime) -> Q:
    # The shipped column is today's hand-overs only; the rest is history, not work.
    if status == SS.SHIPPED:
        return Q(status=status, shipped_at__gte=since)
    if status == SS.TO_PICK:
        return Q(status=status) & ~shipment_held_q()
    if status == HELD:
        return Q(status=SS.TO_PICK) & shipment_held_q()
    return Q(status=status)


def _column_queryset(
    *, warehouse: Warehouse, status: str, filters: KanbanFilters, since: datetime
) -> QuerySet[Shipment]:
    # Most urgent first: (sla_due_at, id) is the order of shipment_kanban_idx (warehouse, status, sla_due_at,
    # id), so a page is an index range scan whatever the column's size. VIPs are not pulled ahead: the
    # ship-by time is the promise a late parcel breaks, whoever the buyer; their badge and red edge make them
    # stand out, and the priority filter shows them alone. The shipped column shows the latest hand-over first.
    # The held lane keeps the same order: the parcel most overdue is the one to chase with the order's owner.
    order = ("-shipped_at", "-id") if status == SS.SHIPPED else ("sla_due_at", "id")
    return (
        Shipment.objects.filter(warehouse=warehouse)
        .filter(_column_q(status, since))
        .filter(filters.q())
        .select_related("carrier")
        .defer("label_data", "carrier__config")
        .order_by(*order)
    )


def _page(
    queryset: QuerySet[Shipment], page: int, now: datetime, *, held: bool = False
) -> tuple[list[KanbanCard], bool]:
    start = (page - 1) * PAGE
    # One row past the page tells whether there is more, without a COUNT.
    rows = list(queryset[start : start + PAGE + 1])
    shown = rows[:PAGE]
    # The held lane says why each parcel waits: one more query, for that lane's page only.
    holds = shipment_holds(shipment_ids=[s.pk for s in shown]) if held else {}
    return [kanban_card(s, now=now, hold=holds.get(s.pk, "")) for s in shown], len(rows) > PAGE


def _lane_label(lane: str) -> str:
    return str(HELD_LABEL) if lane == HELD else str(SS(lane).label)


def kanban_counts(*, warehouse: Warehouse, filters: KanbanFilters) -> dict[str, int]:
    """Cards per lane, every lane in one query, each counted no further than COUNT_CAP (shown "999+").

    One scalar subquery per lane, each the lane's own filter with a LIMIT: an index range scan that stops at
    the cap, so the counts cost the same on a board of 2,000 parcels as on one of 200,000 (a GROUP BY over the
    warehouse read every parcel on the board, and grew with it). Past a thousand the number tells nobody
    at the board anything the "999+" does not.
    """
    since = start_of_today()
    parts, params = [], []
    for n, lane in enumerate(LANES):
        lane_rows = (
            Shipment.objects.filter(warehouse=warehouse)
            .filter(_column_q(lane, since))
            .filter(filters.q())
            .order_by()
            .values("id")[:COUNT_CAP]
        )
        sql, lane_params = lane_rows.query.sql_with_params()
        parts.append(f"(SELECT COUNT(*) FROM ({sql}) lane_{n})")
        params.extend(lane_params)
    with connection.cursor() as cursor:  # Django's SQL and parameters, only wrapped: still one parameterised query
        cursor.execute("SELECT " + ", ".join(parts), params)
        row = cursor.fetchone()
    return {lane: int(count) for lane, count in zip(LANES, row, strict=True)}


def count_display(count: int | None) -> str:
    """A lane's count as the board shows it: exact below the cap, "999+" from it on."""
    if count is None:
        return ""
    return f"{COUNT_CAP - 1}+" if count >= COUNT_CAP else str(count)


def kanban_board(*, warehouse: Warehouse, filters: KanbanFilters) -> KanbanBoard:
    """The board: counts (one query) and the first page of every lane (one query each, plus the held lane's
    reasons)."""
    counts = kanban_counts(warehouse=warehouse, filters=filters)
    since, now = start_of_today(), timezone.now()
    columns = []
    for lane in LANES:
        queryset = _column_queryset(warehouse=warehouse, status=lane, filters=filters, since=since)
        cards, has_more = _page(queryset, 1, now, held=lane == HELD)
        columns.append(
            KanbanColumn(
                status=lane,
                label=_lane_label(lane),
                count=counts[lane],
                cards=cards,
                page=1,
                has_more=has_more,
            )
        )
    return KanbanBoard(warehouse=warehouse, columns=columns)


def kanban_column(
    *, warehouse: Warehouse, status: str, filters: KanbanFilters, page: int = 1
) -> KanbanColumn:
    """One page of one lane ("load more"); its count is left out (the counts partial refreshes those).

    Pages are by offset: a card moved meanwhile may shift the next page by one, which the periodic refresh of
    the board makes good; the board is a work queue, not a ledger.
    """
    if status not in LANES:
        raise ValueError(f"not a kanban column: {status!r}")
    page = max(int(page), 1)
    queryset = _column_queryset(warehouse=warehouse, status=status, filters=filters, since=start_of_today())
    cards, has_more = _page(queryset, page, timezone.now(), held=status == HELD)
    return KanbanColumn(
        status=status, label=_lane_label(status), count=None, cards=cards, page=page, has_more=has_more
    )
