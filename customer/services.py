"""Buyer proofs and signed links: an order number and phone give a short-lived token scoped to one buyer."""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext as _

from customer.models import ProofFailure
from fulfillment.models import Shipment
from oms.exceptions import DomainError, NotFoundError, ValidationFailed
from orders.models import Order

TOKEN_SALT = "customer.buyer-token"
TRACK_SALT = "customer.parcel-track"
PHONE_SALT = "customer.typed-phone"
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


def order_prove(*, order: str, phone: str) -> tuple[str, BuyerScope]:
    """A buyer proves an order: its number (or platform order id) and the receiver phone, full or last four.

    Returns a signed token and the scope it opens. A wrong phone and an unknown order are the same refusal
    (404 order_not_found, the same sentence), counted against the number typed; past the daily cap the number
    is locked for proofs until tomorrow (429 proof_locked). Input of the wrong shape is 400 proof_invalid.
    """
    key = proof_key(order)
    typed = phone_digits(phone)
    errors = {}
    if not key:
        errors["order"] = [_("Type the order number.")]
    if len(typed) != 4 and not 7 <= len(typed) <= 15:
        errors["phone"] = [_("Type the receiver's full phone number or its last four digits.")]
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
    return buyer_token_issue(order=found, phone_digest=_phone_digest(typed) if len(typed) != 4 else "")


def buyer_token_issue(*, order: Order, phone_digest: str = "") -> tuple[str, BuyerScope]:
    """A token for the buyer of ``order`` (already proven). The seam of the WeChat login (issue 17, 3b): an openid
    bound after a first proof keeps that order's number, and its login issues the token here, with no phone."""
    kind, scope = _scope_of(order)
    token = signing.dumps({"v": TOKEN_VERSION, "o": order.number, "k": kind, "pd": phone_digest}, salt=TOKEN_SALT,
                          compress=True)
    return token, BuyerScope(anchor_number=order.number, kind=kind, store_id=order.store_id,
                             buyer_id=scope.get("buyer_id", ""), phone=scope.get("phone", ""),
                             phone_digest=phone_digest)


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
    return BuyerScope(anchor_number=anchor.number, kind=kind, store_id=anchor.store_id,
                      buyer_id=scope.get("buyer_id", ""), phone=scope.get("phone", ""),
                      phone_digest=str(payload.get("pd") or ""))


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
