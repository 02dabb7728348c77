"""The customer API v1 (/api/customer/v1/): order proof, the buyer's orders, after-sales, expedite, parcels."""

from django.conf import settings
from django.utils.translation import gettext as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from customer import selectors
from customer.actions import buyer_expedite_check, buyer_ticket_lines
from customer.authentication import BuyerTokenAuthentication
from customer.serializers import (
    AfterSalesSerializer,
    ExpediteSerializer,
    OrderDetailSerializer,
    OrderSummarySerializer,
    ParcelSerializer,
    TicketOutSerializer,
    TokenSerializer,
    WeChatLoginOutSerializer,
    WeChatLoginSerializer,
    WeChatProofSerializer,
    WeChatUnbindAllSerializer,
)
from customer.services import (
    WECHAT_TICKET_MAX_AGE,
    BuyerScope,
    ProofLocked,
    WeChatLoginRefused,
    order_prove,
    parcel_from_tracking_token,
    parcel_tracking_path,
    wechat_login,
    wechat_unbind,
    wechat_unbind_all,
)
from customer.throttles import (
    CustomerRateThrottle,
    ProofAddressThrottle,
    ProofOrderThrottle,
    WeChatLoginThrottle,
)
from oms.api_errors import error_responses, field_errors_flat
from oms.exceptions import ConflictError, ValidationFailed
from orders.models import Order
from pipeline import expedite, tickets

NUMBER = OpenApiParameter("number", str, OpenApiParameter.PATH, description="The order number.")
TOKEN = OpenApiParameter("token", str, OpenApiParameter.PATH, description="The parcel's signed tracking token.")
# What every call with a token may answer besides its own errors.
BUYER_ERRORS = (401, 404, 405, 429)


class BuyerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "customer.authentication.BuyerTokenAuthentication"
    name = "buyerToken"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "The token from POST /api/customer/v1/proof/."}


class CustomerAPIView(APIView):
    """A buyer's call: their token, no session (so no CSRF), counted per client address."""

    authentication_classes = [BuyerTokenAuthentication]
    permission_classes = [IsAuthenticated]
    throttle_classes = [CustomerRateThrottle]

    @property
    def scope(self) -> BuyerScope:
        return self.request.user


def _event(event) -> dict | None:
    if event is None:
        return None
    return {"at": event.occurred_at, "code": event.code, "description": event.description,
            "location": event.location}


def _stage(stage) -> dict:
    return {"code": stage.code, "label": stage.label, "step": stage.step, "steps": stage.steps,
            "labels": stage.labels}


def parcel_data(parcel) -> dict:
    return {"number": parcel.number, "carrier": parcel.carrier.name if parcel.carrier else None,
            "tracking_number": parcel.tracking_number, "stage": _stage(selectors.parcel_stage(parcel)),
            "latest_event": _event(selectors.parcel_latest_event(parcel)),
            "estimated_delivery": selectors.parcel_estimated_delivery(parcel),
            "tracking_url": parcel_tracking_path(shipment=parcel)}


def _summary(order: Order) -> dict:
    return {"number": order.number, "store": order.store.name, "placed_at": order.placed_at,
            "stage": _stage(selectors.order_stage(order)), "total_amount": order.total_amount,
            "currency": order.currency}


def order_detail_data(order: Order, scope: BuyerScope) -> dict:
    parcels = selectors.order_parcels(order)
    latest = [e for e in (selectors.parcel_latest_event(p) for p in parcels) if e is not None]
    estimates = [d for d in (selectors.parcel_estimated_delivery(p) for p in parcels) if d is not None]
    return {**_summary(order),
            "lines": [{"line_no": line.line_no, "title": line.title, "quantity": line.quantity,
                       "unit_price": line.unit_price} for line in order.lines.all()],
            "receiver": selectors.masked_receiver(order, scope),
            "parcels": [parcel_data(p) for p in parcels],
            "latest_carrier_event": _event(max(latest, key=lambda e: e.occurred_at) if latest else None),
            "estimated_delivery": max(estimates) if estimates else None,
            "timeline": selectors.order_timeline(order, parcels),
            "can_expedite": selectors.buyer_may_expedite(scope=scope, order=order)}


class ProofView(APIView):
    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = [ProofAddressThrottle, ProofOrderThrottle, CustomerRateThrottle]

    @extend_schema(operation_id="customer_proof", request=WeChatProofSerializer,
                   responses={200: TokenSerializer, **error_responses(400, 404, 405, 415, 429)})
    def post(self, request):
        """Prove an order with its number (or the platform's order id) and the receiver phone, in full or its last
        four digits; answers a token for the buyer's orders, valid for two hours. A wrong phone is answered exactly
        like an unknown order (404 order_not_found). Ten tries a minute per address and per order number (then
        429 with Retry-After); after too many wrong tries in a day the order number is locked until tomorrow.
        With the wechat_ticket of a WeChat login and the full phone, the WeChat user is bound to this buyer
        (wechat_bound: true; a ticket binds once, and the last four digits alone bind nobody)."""
        body = WeChatProofSerializer(data=request.data)
        if not body.is_valid():
            raise ValidationFailed(_("The order number or phone is not valid."), code="proof_invalid",
                                   data=field_errors_flat(body.errors))
        try:
            token, scope = order_prove(order=body.validated_data["order"], phone=body.validated_data["phone"],
                                       wechat_ticket=body.validated_data.get("wechat_ticket", ""))
        except ProofLocked as exc:
            raise exceptions.Throttled(wait=exc.retry_after, detail=exc.message) from None
        return Response(TokenSerializer({"token": token, "token_type": "Bearer",
                                         "expires_in": settings.OMS_CUSTOMER_TOKEN_MAX_AGE,
                                         "wechat_bound": scope.wechat_binding_id is not None}).data)


class WeChatLoginView(APIView):
    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = [WeChatLoginThrottle, CustomerRateThrottle]

    @extend_schema(operation_id="customer_wechat_login", request=WeChatLoginSerializer,
                   responses={200: WeChatLoginOutSerializer, **error_responses(400, 403, 405, 415, 429, 503)})
    def post(self, request):
        """Log in with the code of wx.login(): the hub exchanges it at WeChat (jscode2session) for the user's
        openid, which it never shows. A user bound to a buyer gets a token at once (bound: true); otherwise a
        wechat_ticket (ten minutes) to send with the first order proof, which binds them. Refusals:
        400 wechat_code_invalid (call wx.login again), 403 wechat_login_blocked, 429, 503 wechat_unavailable or
        wechat_login_disabled (prove the order with its number and phone instead)."""
        body = WeChatLoginSerializer(data=request.data)
        if not body.is_valid():
            errors = field_errors_flat(body.errors)
            # Only a bad code means "call wx.login() again"; anything else is the client's request to fix.
            code = "wechat_code_invalid" if set(errors) == {"code"} else "invalid"
            raise ValidationFailed(_("The login request is not valid."), code=code, data=errors)
        try:
            login = wechat_login(code=body.validated_data["code"])
        except WeChatLoginRefused as exc:
            if exc.retry_after is not None:
                raise exceptions.Throttled(wait=exc.retry_after, detail=exc.message) from None
            raise
        if login.bound:
            data = {"bound": True, "token": login.token, "token_type": "Bearer",
                    "expires_in": settings.OMS_CUSTOMER_TOKEN_MAX_AGE}
        else:
            data = {"bound": False, "wechat_ticket": login.wechat_ticket, "expires_in": WECHAT_TICKET_MAX_AGE}
        return Response(WeChatLoginOutSerializer(data).data)


class WeChatBindingView(CustomerAPIView):
    @extend_schema(operation_id="customer_wechat_unbind", request=None,
                   responses={204: None, **error_responses(*BUYER_ERRORS)})
    def delete(self, request):
        """Unbind the WeChat user this token came through (a token from a WeChat login, or from a proof that bound
        one): the next login asks for an order proof again, and every token the binding gave stops working (401).
        A token from a plain proof is 404 wechat_not_bound (DELETE …/wechat/bindings/ unbinds every WeChat user
        bound to the buyer)."""
        wechat_unbind(scope=self.scope)
        return Response(status=status.HTTP_204_NO_CONTENT)


class WeChatBindingsView(CustomerAPIView):
    @extend_schema(operation_id="customer_wechat_unbind_all", request=None,
                   responses={200: WeChatUnbindAllSerializer, **error_responses(*BUYER_ERRORS)})
    def delete(self, request):
        """Unbind every WeChat user bound to this buyer's orders, whoever they are (say someone else's WeChat was
        bound with a proof of your order): they must prove an order again. Answers how many were unbound."""
        return Response(WeChatUnbindAllSerializer({"unbound": wechat_unbind_all(scope=self.scope)}).data)


class OrderListView(CustomerAPIView):
    @extend_schema(operation_id="customer_orders_list", responses={200: OrderSummarySerializer(many=True),
                                                                   **error_responses(401, 405, 429)})
    def get(self, request):
        """The buyer's orders, newest first (at most 100): the store, when, the stage in words, the total."""
        orders = selectors.buyer_orders(scope=self.scope)[:100]
        return Response(OrderSummarySerializer([_summary(order) for order in orders], many=True).data)


class OrderDetailView(CustomerAPIView):
    @extend_schema(operation_id="customer_orders_retrieve", parameters=[NUMBER],
                   responses={200: OrderDetailSerializer, **error_responses(*BUYER_ERRORS)})
    def get(self, request, number: str):
        """One of the buyer's orders: the stage, lines, masked receiver, parcels with their latest carrier event
        and estimated delivery, and the timeline. Another buyer's order is 404 like an unknown one."""
        order = selectors.buyer_order(scope=self.scope, number=number)
        return Response(OrderDetailSerializer(order_detail_data(order, self.scope)).data)


class AfterSalesView(CustomerAPIView):
    @extend_schema(operation_id="customer_after_sales_create", parameters=[NUMBER], request=AfterSalesSerializer,
                   responses={201: TicketOutSerializer, **error_responses(400, 415, *BUYER_ERRORS)})
    def post(self, request, number: str):
        """Apply for after-sales on some lines (by line_no): a ticket from source customer_api, with the same
        automatic checks as customer service's (window, units shipped, amounts): 400 ticket_invalid per field."""
        order = selectors.buyer_order(scope=self.scope, number=number)
        body = AfterSalesSerializer(data=request.data)
        if not body.is_valid():
            raise ValidationFailed(_("The after-sales request is not valid."), code="ticket_invalid",
                                   data=field_errors_flat(body.errors))
        data = body.validated_data
        lines = buyer_ticket_lines(order=order, lines=data["lines"])
        ticket = tickets.ticket_open(order_id=order.pk, type=data["type"], reason=data["reason"], lines=lines,
                                     reason_text=data["reason_text"],
                                     return_tracking_number=data["return_tracking_number"], source="customer_api",
                                     actor=None, actor_label="customer_api")
        return Response(TicketOutSerializer({
            "number": ticket.number, "type": ticket.type, "status": ticket.status,
            "status_display": ticket.get_status_display(), "requested_amount": ticket.requested_amount,
            "created_at": ticket.created_at}).data, status=status.HTTP_201_CREATED)


class ExpediteView(CustomerAPIView):
    @extend_schema(operation_id="customer_expedite", parameters=[NUMBER], request=None,
                   responses={200: ExpediteSerializer, **error_responses(403, 409, *BUYER_ERRORS)})
    def post(self, request, number: str):
        """Ask for the order to be hurried: VIP buyers only (403 expedite_not_allowed otherwise); an order that
        has left the warehouse is 409. Raises its priority and moves its parcels up the warehouse's board."""
        order = selectors.buyer_order(scope=self.scope, number=number)
        buyer_expedite_check(scope=self.scope)
        # The desk's expedite flow (priority up, parcels up the kanban, one order event). An order already hurried
        # is not the buyer's mistake: asking twice answers 200 with its own sentence, not the desk's 409.
        try:
            expedite.order_expedite(order_id=order.pk, actor=None, reason=_("Asked by the buyer (mini-program)."))
        except ConflictError as exc:
            if exc.code != "already_expedited":
                raise
            message = _("Your order is already hurried.")
        else:
            message = _("Your order will be hurried.")
        return Response(ExpediteSerializer({"number": order.number, "expedited": True, "message": message}).data)


class ParcelView(APIView):
    """The public tracking page's data: no login, the signed per-parcel token is the key."""

    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = [CustomerRateThrottle]

    @extend_schema(operation_id="customer_parcel_retrieve", parameters=[TOKEN],
                   responses={200: ParcelSerializer, **error_responses(404, 405, 429)})
    def get(self, request, token: str):
        """A parcel by its signed tracking token: stage, carrier, latest event and estimated delivery."""
        return Response(ParcelSerializer(parcel_data(parcel_from_tracking_token(token=token))).data)

