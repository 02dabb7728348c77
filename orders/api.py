"""REST API v1 for orders: list, detail, manual creation (idempotent) and the transition endpoints."""

from django.db import transaction
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import JSONParser
from rest_framework.response import Response

from oms.api_errors import COMMON_ERRORS, error_responses
from oms.api_schema import KnownQueryParamsMixin
from orders import services
from orders.filters import OrderAPIFilter
from orders.models import IDEMPOTENCY_KEY_MAX_LENGTH
from orders.selectors import order_detail_queryset, order_list_queryset
from orders.serializers import (
    CancelSerializer,
    HoldSerializer,
    ManualOrderCreateSerializer,
    OrderDetailSerializer,
    OrderSerializer,
    TransitionSerializer,
)
from pipeline import orders as flows

IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key", {"type": "string", "maxLength": IDEMPOTENCY_KEY_MAX_LENGTH}, OpenApiParameter.HEADER,
    required=False,
    description="Send the same key when retrying; the order is created once and the first answer is repeated "
                "for OMS_IDEMPOTENCY_KEY_TTL_HOURS (48 by default). At most 128 characters: a longer key is "
                "refused (400 idempotency_key_too_long), never cut.")
# The errors of the action endpoints on one order (POST /orders/{id}/<action>/).
ACTION_ERRORS = error_responses(400, 404, 409, 415, *COMMON_ERRORS)


class OrderPermission(permissions.BasePermission):
    """Role permissions per action; the transition services check their own permission again."""

    ACTION_PERMS = {
        "list": "orders.view_order", "retrieve": "orders.view_order", "create": "orders.add_order",
        "cancel": "orders.cancel_order", "hold": "orders.hold_order", "release": "orders.hold_order",
        "transition": "orders.view_order",
    }

    def has_permission(self, request, view) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        if view.action is None and request.method not in view.allowed_methods:
            # No route for this method (PUT, PATCH, DELETE): let the view answer 405 rather than 403.
            return True
        perm = self.ACTION_PERMS.get(view.action)
        return bool(perm) and request.user.has_perm(perm)


@extend_schema_view(
    list=extend_schema(responses={200: OrderSerializer(many=True), **error_responses(400, 404, *COMMON_ERRORS)}),
    retrieve=extend_schema(responses={200: OrderDetailSerializer, **error_responses(404, *COMMON_ERRORS)}),
)
class OrderViewSet(KnownQueryParamsMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    permission_classes = [OrderPermission]
    filterset_class = OrderAPIFilter
    # JSON only: nested lines and a receiver do not survive form encoding.
    parser_classes = [JSONParser]

    def get_queryset(self):
        if self.action == "list":
            return order_list_queryset().prefetch_related("lines")
        return order_detail_queryset()

    def get_serializer_class(self):
        if self.action == "create":
            return ManualOrderCreateSerializer
        if self.action == "list":
            return OrderSerializer
        return OrderDetailSerializer

    def _detail(self, order) -> dict:
        order = order_detail_queryset().get(pk=order.pk)
        return OrderDetailSerializer(order, context=self.get_serializer_context()).data

    @extend_schema(request=ManualOrderCreateSerializer, parameters=[IDEMPOTENCY_HEADER],
                   responses={201: OrderDetailSerializer, **error_responses(400, 409, 415, 422, *COMMON_ERRORS)})
    def create(self, request, *args, **kwargs):
        """Create a manual-channel order (WeChat/offline). Lines are by merchant SKU code."""
        serializer = ManualOrderCreateSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)

        def perform():
            order = flows.order_create_manual(store=serializer.validated_data["store"],
                                                 data=serializer.to_order_input(platform_order_id=""),
                                                 actor=request.user)
            return status.HTTP_201_CREATED, self._detail(order), order

        key = request.headers.get("Idempotency-Key", "").strip()
        if not key:
            with transaction.atomic():
                code, body, _order = perform()
            return Response(body, status=code)
        code, body, replayed = services.idempotent_call(
            user=request.user, endpoint="orders.create", key=key,
            fingerprint=services.request_fingerprint(request.data), perform=perform)
        response = Response(body, status=code)
        if replayed:
            response["Idempotent-Replayed"] = "true"
        return response

    @extend_schema(request=CancelSerializer, responses={200: OrderDetailSerializer, **ACTION_ERRORS})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Cancel the order (allowed before it enters fulfilment), optionally with a reason_code of the order page."""
        order = self.get_object()
        body = CancelSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        order = flows.order_cancel(order_id=order.pk, actor=request.user, reason=body.validated_data["reason"],
                                      reason_code=body.validated_data["reason_code"])
        return Response(self._detail(order))

    @extend_schema(request=HoldSerializer, responses={200: OrderDetailSerializer, **ACTION_ERRORS})
    @action(detail=True, methods=["post"])
    def hold(self, request, pk=None):
        """Put a hold with a reason code on the order."""
        order = self.get_object()
        body = HoldSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        order = services.order_hold(order_id=order.pk, hold_reason=body.validated_data["reason"],
                                    note=body.validated_data["note"], actor=request.user)
        return Response(self._detail(order))

    @extend_schema(request=HoldSerializer, responses={200: OrderDetailSerializer, **ACTION_ERRORS})
    @action(detail=True, methods=["post"])
    def release(self, request, pk=None):
        """Release one hold reason; the last release returns the order to where it was."""
        order = self.get_object()
        body = HoldSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        order = flows.order_release_hold(order_id=order.pk, hold_reason=body.validated_data["reason"],
                                            note=body.validated_data["note"], actor=request.user)
        return Response(self._detail(order))

    @extend_schema(request=TransitionSerializer, responses={200: OrderDetailSerializer, **ACTION_ERRORS})
    @action(detail=True, methods=["post"])
    def transition(self, request, pk=None):
        """Apply a user transition by name (pay, approve, start_fulfilment, ship_partially, ship, deliver, complete,
        cancel, close). Each needs its own permission (403 permission_denied); pay only for orders of manual
        stores, as platforms report payment themselves (409 paid_by_platform)."""
        order = self.get_object()
        body = TransitionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        order = flows.order_apply_user_transition(order_id=order.pk, name=body.validated_data["transition"],
                                                     user=request.user, reason=body.validated_data["reason"])
        return Response(self._detail(order))

