"""Buyer proofs, WeChat logins and signed links: each gives a short-lived token scoped to one buyer."""

from __future__ import annotations

import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import F, Q, QuerySet
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext as _

from customer.models import ProofFailure, WeChatBinding
from customer.wechat import (
    REASON_BLOCKED,
    REASON_CODE_INVALID,
    REASON_RATE_LIMITED,
    WeChatClient,
    WeChatLoginError,
    wechat_login_configured,
)
from fulfillment.models import Shipment
from oms.exceptions import DomainError, NotFoundError, ValidationFailed
from orders.models import Order

TOKEN_SALT = "customer.buyer-token"
TRACK_SALT = "customer.parcel-track"
PHONE_SALT = "customer.typed-phone"
WECHAT_TICKET_SALT = "customer.wechat-ticket"
OPENID_SALT = "customer.wechat-openid"
# How long a WeChat login that found no binding may be used to bind, by proving an order.
WECHAT_TICKET_MAX_AGE = 600
TOKEN_VERSION = 1
# A buyer: the store's platform buyer id, or a full receiver phone; with neither, the proven order alone.
SCOPE_BUYER, SCOPE_PHONE, SCOPE_ORDER = "buyer", "phone", "order"
_NOT_DIGIT = re.compile(r"\D")


class TokenInvalid(DomainError):
    code = "authentication_failed"
    http_status = 401


class ProofLocked(DomainError):
    """An order number had too many failed proofs today; ``retry_after`` is the seconds until tomorrow."""

    code = "proof_locked"
    http_status = 429

    def __init__(self, message: str, *, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class BuyerScope:
    """Who a customer token speaks for: the orders its proof opened. Stands in for request.user in the API."""

    anchor_number: str
    kind: str
    store_id: int
    buyer_id: str
    phone: str  # the anchor order's receiver phone, read from the database, never from the token
    phone_digest: str  # the phone the buyer typed (hashed); only an order with that phone shows it unmasked
    wechat_binding_id: int | None = None  # set when the token came through a WeChat user bound to this buyer

    is_authenticated = True
    is_anonymous = False

    def orders(self) -> QuerySet[Order]:
        if self.kind == SCOPE_BUYER:
            return Order.objects.filter(store_id=self.store_id, buyer_id=self.buyer_id)
        if self.kind == SCOPE_PHONE:
            return Order.objects.filter(receiver_phone=self.phone)
        return Order.objects.filter(number=self.anchor_number)

    def typed_phone(self, phone: str) -> bool:
        """Whether the buyer typed this full phone in their proof (then it is theirs to see)."""
        return bool(self.phone_digest) and hmac.compare_digest(self.phone_digest, _phone_digest(phone))


def phone_digits(value: str) -> str:
    digits = _NOT_DIGIT.sub("", value or "")
    # +86 138... and 0086 138...: a mainland mobile as stored without the country code.
    if len(digits) == 13 and digits.startswith("86"):
        return digits[2:]
    if len(digits) == 15 and digits.startswith("0086"):
        return digits[4:]
    return digits


def _phone_digest(phone: str) -> str:
    return salted_hmac(PHONE_SALT, phone_digits(phone)).hexdigest()


def _phone_matches(stored: str, typed: str) -> bool:
    """Full phone against an unmasked stored phone; last four against any copy (platform-masked ones too)."""
    stored = stored or ""
    if len(typed) == 4:
        tail = stored[-4:]
        return len(tail) == 4 and tail.isdigit() and hmac.compare_digest(tail, typed)
    if "*" in stored:
        return False  # PDD and Douyin mask the phone: a full number cannot be checked against it
    return hmac.compare_digest(phone_digits(stored), typed)


def _today():
    return timezone.localdate()


def _seconds_to_tomorrow() -> int:
    now = timezone.localtime()
    tomorrow = datetime.combine(now.date() + timedelta(days=1), time.min, tzinfo=now.tzinfo)
    return max(int((tomorrow - now).total_seconds()), 1)


def proof_key(value: str) -> str:
    return (value or "").strip()[:64]


def proof_failures_today(*, key: str) -> int:
    row = ProofFailure.objects.filter(key=proof_key(key), day=_today()).only("count").first()
    return row.count if row else 0


def proof_failure_record(*, key: str) -> int:
    """Count one failed proof of ``key`` today; returns today's count."""
    key, day = proof_key(key), _today()
    with transaction.atomic():
        row, created = ProofFailure.objects.get_or_create(key=key, day=day, defaults={"count": 1})
        if not created:
            ProofFailure.objects.filter(pk=row.pk).update(count=F("count") + 1, updated_at=timezone.now())
    return ProofFailure.objects.get(pk=row.pk).count


def _scope_of(order: Order) -> tuple[str, dict]:
    if order.buyer_id:
        return SCOPE_BUYER, {"store_id": order.store_id, "buyer_id": order.buyer_id}
    phone = order.receiver_phone or ""
    if "*" not in phone and len(phone_digits(phone)) >= 7:
        return SCOPE_PHONE, {"phone": phone}
    return SCOPE_ORDER, {}


def order_prove(*, order: str, phone: str, wechat_ticket: str = "") -> tuple[str, BuyerScope]:
    """A buyer proves an order: its number (or platform order id) and the receiver phone, full or last four.

    Returns a signed token and the scope it opens. A wrong phone and an unknown order are the same refusal
    (404 order_not_found, the same sentence), counted against the number typed; past the daily cap the number
    is locked for proofs until tomorrow (429 proof_locked). Input of the wrong shape is 400 proof_invalid.
    With ``wechat_ticket`` (from a WeChat login that found no binding), the WeChat user is bound to this buyer.
    """
    key = proof_key(order)
    typed = phone_digits(phone)
    errors = {}
    if not key:
        errors["order"] = [_("Type the order number.")]
    if len(typed) != 4 and not 7 <= len(typed) <= 15:
        errors["phone"] = [_("Type the receiver's full phone number or its last four digits.")]
    ticket = None
    if wechat_ticket:
        ticket = wechat_ticket_read(ticket=wechat_ticket)
        if ticket is None:
            errors["wechat_ticket"] = [_("The WeChat login has expired or is not valid: log in again.")]
    if errors:
        raise ValidationFailed(_("The order number or phone is not valid."), code="proof_invalid", data=errors)
    cap = settings.OMS_CUSTOMER_PROOF_DAILY_FAILURES
    if proof_failures_today(key=key) >= cap:
        raise ProofLocked(_("Too many wrong tries for this order number today; try again tomorrow."),
                          retry_after=_seconds_to_tomorrow())
    # The same query and the same comparisons whether the order exists or not, so timing says little.
    candidates = list(Order.objects.filter(Q(number=key) | Q(platform_order_id=key))
                      .only("pk", "number", "store_id", "buyer_id", "receiver_phone").order_by("pk")[:5])
    found = None
    for candidate in candidates or [Order(receiver_phone="0000000000")]:
        if _phone_matches(candidate.receiver_phone, typed) and candidate.pk and found is None:
            found = candidate
    if found is None:
        proof_failure_record(key=key)
        raise NotFoundError(_("No order matches this order number and phone."), code="order_not_found")
    full_phone = len(typed) != 4
    phone_digest = _phone_digest(typed) if full_phone else ""
    binding = None
    # A lasting login needs the stronger proof: four digits are 10,000 guesses, a full phone is not.
    if ticket is not None and full_phone and _ticket_consume(ticket):
        binding = wechat_bind(openid_digest=ticket.openid_digest, order=found, phone_digest=phone_digest)
    return buyer_token_issue(order=found, phone_digest=phone_digest, wechat_binding=binding)


def buyer_token_issue(*, order: Order, phone_digest: str = "",
                      wechat_binding: WeChatBinding | None = None) -> tuple[str, BuyerScope]:
    """A token for the buyer of ``order`` (already proven, now or by a WeChat user bound to it earlier)."""
    kind, scope = _scope_of(order)
    payload = {"v": TOKEN_VERSION, "o": order.number, "k": kind, "pd": phone_digest}
    if wechat_binding is not None:
        payload["wb"] = wechat_binding.pk
    token = signing.dumps(payload, salt=TOKEN_SALT, compress=True)
    return token, BuyerScope(anchor_number=order.number, kind=kind, store_id=order.store_id,
                             buyer_id=scope.get("buyer_id", ""), phone=scope.get("phone", ""),
                             phone_digest=phone_digest,
                             wechat_binding_id=wechat_binding.pk if wechat_binding is not None else None)


def buyer_scope_from_token(*, token: str) -> BuyerScope:
    """The scope a token carries, re-read from the database. Expired, tampered or stale tokens: 401."""
    try:
        payload = signing.loads(token, salt=TOKEN_SALT, max_age=settings.OMS_CUSTOMER_TOKEN_MAX_AGE)
    except signing.SignatureExpired:
        raise TokenInvalid(_("The token has expired: prove the order again."), code="token_expired") from None
    except signing.BadSignature:
        raise TokenInvalid(_("The token is not valid.")) from None
    if not isinstance(payload, dict) or payload.get("v") != TOKEN_VERSION:
        raise TokenInvalid(_("The token is not valid."))
    anchor = Order.objects.filter(number=payload.get("o")).only(
        "pk", "number", "store_id", "buyer_id", "receiver_phone").first()
    if anchor is None:
        raise TokenInvalid(_("The token is not valid."))
    kind, scope = _scope_of(anchor)
    if kind != payload.get("k"):
        # The order's buyer or phone changed since the proof: what the token opened is not what it would now.
        raise TokenInvalid(_("The token is not valid."))
    binding_id = payload.get("wb")
    if binding_id is not None and not WeChatBinding.objects.filter(pk=binding_id, unbound_at__isnull=True).exists():
        # Unbinding ends every token the WeChat user was given, at once.
        raise TokenInvalid(_("This WeChat login has ended (unbound or bound to another order): log in again."),
                           code="wechat_unbound")
    return BuyerScope(anchor_number=anchor.number, kind=kind, store_id=anchor.store_id,
                      buyer_id=scope.get("buyer_id", ""), phone=scope.get("phone", ""),
                      phone_digest=str(payload.get("pd") or ""), wechat_binding_id=binding_id)


# --- WeChat login (docs/customer-api.md, "WeChat login") ----------------------------------------------------------


class WeChatLoginRefused(DomainError):
    """A WeChat login that gave no openid, as the customer API answers it (see customer.wechat for the reasons)."""

    def __init__(self, message: str, *, code: str, http_status: int, retry_after: int | None = None):
        super().__init__(message, code=code, http_status=http_status)
        self.retry_after = retry_after


@dataclass(frozen=True)
class WeChatLogin:
    """A WeChat login's outcome: a bound user gets a buyer token; an unbound one a ticket to bind with a proof."""

    token: str = ""
    wechat_ticket: str = ""

    @property
    def bound(self) -> bool:
        return bool(self.token)


def openid_digest_of(openid: str) -> str:
    """The keyed digest the hub keeps instead of an openid (per mini-program: the same person has another openid
    in another app)."""
    return salted_hmac(OPENID_SALT, f"{settings.OMS_WECHAT_APP_ID}:{openid}", algorithm="sha256").hexdigest()


@dataclass(frozen=True)
class WeChatTicket:
    openid_digest: str
    nonce: str


def wechat_ticket_read(*, ticket: str) -> WeChatTicket | None:
    """What a login ticket carries; None when it is tampered with, expired, for another app or already used."""
    try:
        payload = signing.loads(ticket, salt=WECHAT_TICKET_SALT, max_age=WECHAT_TICKET_MAX_AGE)
    except signing.BadSignature:
        return None
    if not isinstance(payload, dict) or payload.get("a") != settings.OMS_WECHAT_APP_ID:
        return None
    digest, nonce = payload.get("d"), payload.get("n")
    if not (isinstance(digest, str) and len(digest) == 64 and isinstance(nonce, str) and nonce):
        return None
    if cache.get(_ticket_key(nonce)) is not None:
        return None
    return WeChatTicket(openid_digest=digest, nonce=nonce)


def _ticket_key(nonce: str) -> str:
    return f"customer:wechat-ticket-used:{nonce}"


def _ticket_consume(ticket: WeChatTicket) -> bool:
    """Mark a ticket used; False when another request used it first. A ticket binds once: a copy of it (a log, a
    shared screen) cannot bind the WeChat user again, nor end the binding it made by binding anew."""
    return cache.add(_ticket_key(ticket.nonce), 1, timeout=WECHAT_TICKET_MAX_AGE + 60)


def _binding_alive_since():
    """Bindings older than this need a new proof: a lasting login should not last for ever."""
    return timezone.now() - timedelta(days=settings.OMS_WECHAT_BINDING_MAX_DAYS)


def _live_binding(openid_digest: str) -> WeChatBinding | None:
    return (WeChatBinding.objects.select_related("order")
            .filter(app_id=settings.OMS_WECHAT_APP_ID, openid_digest=openid_digest, unbound_at__isnull=True,
                    created_at__gte=_binding_alive_since()).first())


def wechat_login(*, code: str, client: WeChatClient | None = None) -> WeChatLogin:
    """A mini-program login: exchange the wx.login() code at WeChat, then a token if the user is bound to a buyer.

    Refusals (WeChatLoginRefused): 503 wechat_login_disabled when no app id/secret is set; 400 wechat_code_invalid
    (a bad, expired or used code: call wx.login again); 403 wechat_login_blocked (WeChat blocks this user);
    wechat_rate_limited (WeChat's limit; the API answers it as 429 throttled, Retry-After 60); 503
    wechat_unavailable (WeChat busy or unreachable, or our credentials refused).
    """
    if not wechat_login_configured():
        raise WeChatLoginRefused(_("WeChat login is not set up for this shop."), code="wechat_login_disabled",
                                 http_status=503)
    try:
        session = (client or WeChatClient.from_settings()).code_to_session(code)
    except WeChatLoginError as exc:
        raise _login_refusal(exc) from None
    digest = openid_digest_of(session.openid)
    binding = _live_binding(digest)
    if binding is None:
        ticket = signing.dumps({"a": settings.OMS_WECHAT_APP_ID, "d": digest, "n": secrets.token_urlsafe(12)},
                               salt=WECHAT_TICKET_SALT, compress=True)
        return WeChatLogin(wechat_ticket=ticket)
    WeChatBinding.objects.filter(pk=binding.pk).update(last_login_at=timezone.now())
    token, _scope = buyer_token_issue(order=binding.order, phone_digest=binding.phone_digest, wechat_binding=binding)
    return WeChatLogin(token=token)


def _login_refusal(exc: WeChatLoginError) -> WeChatLoginRefused:
    if exc.reason == REASON_CODE_INVALID:
        return WeChatLoginRefused(_("The WeChat login code is not valid or was already used: log in again."),
                                  code="wechat_code_invalid", http_status=400)
    if exc.reason == REASON_BLOCKED:
        return WeChatLoginRefused(_("WeChat does not allow this account to log in."), code="wechat_login_blocked",
                                  http_status=403)
    if exc.reason == REASON_RATE_LIMITED:
        return WeChatLoginRefused(_("Too many logins: try again in a minute."), code="wechat_rate_limited",
                                  http_status=429, retry_after=60)
    return WeChatLoginRefused(_("WeChat login is unavailable at the moment: try again shortly, or prove the order "
                                "with its number and phone."), code="wechat_unavailable", http_status=503)


def wechat_bind(*, openid_digest: str, order: Order, phone_digest: str) -> WeChatBinding:
    """Bind a WeChat user to the buyer of a just-proven order; a binding it had before (expired, or to another
    buyer) is ended."""
    try:
        return _bind_once(openid_digest=openid_digest, order=order, phone_digest=phone_digest)
    except IntegrityError:
        # The one-live-binding constraint: a concurrent bind of the same user committed between our update and
        # insert. Once more ends that one and takes its place.
        return _bind_once(openid_digest=openid_digest, order=order, phone_digest=phone_digest)


def _bind_once(*, openid_digest: str, order: Order, phone_digest: str) -> WeChatBinding:
    now = timezone.now()
    with transaction.atomic():
        WeChatBinding.objects.filter(app_id=settings.OMS_WECHAT_APP_ID, openid_digest=openid_digest,
                                     unbound_at__isnull=True).update(unbound_at=now)
        return WeChatBinding.objects.create(app_id=settings.OMS_WECHAT_APP_ID, openid_digest=openid_digest,
                                            order=order, phone_digest=phone_digest, last_login_at=now)


def wechat_unbind_all(*, scope: BuyerScope) -> int:
    """End every WeChat binding to this buyer's orders (someone else's WeChat bound with their proof); returns how
    many were ended."""
    return WeChatBinding.objects.filter(order__in=scope.orders(), unbound_at__isnull=True).update(
        unbound_at=timezone.now())


def wechat_unbind(*, scope: BuyerScope) -> None:
    """The buyer unbinds the WeChat user their token came through; every token it was given stops working."""
    if scope.wechat_binding_id is None:
        raise NotFoundError(_("This session did not come through a WeChat login."), code="wechat_not_bound")
    WeChatBinding.objects.filter(pk=scope.wechat_binding_id, unbound_at__isnull=True).update(
        unbound_at=timezone.now())


def parcel_tracking_token(*, shipment: Shipment) -> str:
    """The signed token of one parcel's public tracking page: its number, never a database id."""
    return signing.dumps({"s": shipment.number}, salt=TRACK_SALT, compress=True)


def parcel_tracking_path(*, shipment: Shipment) -> str:
    """The path of the parcel's public tracking page (/t/<token>); callers prefix their site's address."""
    return reverse("customer:track", kwargs={"token": parcel_tracking_token(shipment=shipment)})


def parcel_from_tracking_token(*, token: str) -> Shipment:
    """The parcel a tracking token names; a bad, expired or unknown one is 404 parcel_not_found."""
    missing = NotFoundError(_("This tracking link is not valid or has expired."), code="parcel_not_found")
    try:
        payload = signing.loads(token, salt=TRACK_SALT,
                                max_age=timedelta(days=settings.OMS_TRACKING_LINK_MAX_AGE_DAYS))
    except signing.BadSignature:
        raise missing from None
    number = payload.get("s") if isinstance(payload, dict) else None
    shipment = Shipment.objects.select_related("carrier").filter(number=number).first() if number else None
    if shipment is None:
        raise missing
    return shipment
