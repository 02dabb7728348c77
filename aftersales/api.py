"""REST API v1 for after-sales tickets: list, detail, opening one, and the transition endpoint."""

from django.db.models import Prefetch
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import JSONParser
from rest_framework.response import Response

from aftersales.forms import TicketAPIFilter
from aftersales.models import ReturnUnit, Ticket, TicketLine
from aftersales.serializers import (
    TicketCreateSerializer,
    TicketDetailSerializer,
    TicketSerializer,
    TicketTransitionSerializer,
)
from oms.api_errors import COMMON_ERRORS, error_responses, field_errors_flat
from oms.api_schema import KnownQueryParamsMixin
from oms.exceptions import NotFoundError, ValidationFailed
from oms.inputs import is_id
from pipeline import tickets as flows

TICKET_ID = OpenApiParameter("id", int, OpenApiParameter.PATH, description="The ticket's id.")


def _ticket_id(raw) -> int:
    """The id in the path, or 404 ticket_not_found for anything that names no ticket ("abc", 10**30)."""
    if not is_id(raw):
        raise NotFoundError(_("Ticket %(id)s does not exist.") % {"id": str(raw)[:20]}, code="ticket_not_found")
    return int(raw)


class TicketPermission(permissions.BasePermission):
    """Role permissions per action: see, open, work."""

    ACTION_PERMS = {"list": "aftersales.view_ticket", "retrieve": "aftersales.view_ticket",
                    "create": "aftersales.add_ticket", "transition": "aftersales.work_ticket"}

    def has_permission(self, request, view) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        if view.action is None and request.method not in view.allowed_methods:
            return True  # no route for this method: the view answers 405 rather than 403
        perm = self.ACTION_PERMS.get(view.action)
        return bool(perm) and request.user.has_perm(perm)


def _detail_queryset():
    return Ticket.objects.select_related("order", "store", "owner").prefetch_related(
        Prefetch("lines", queryset=TicketLine.objects.select_related("order_line").order_by("order_line__line_no")),
        Prefetch("units", queryset=ReturnUnit.objects.select_related("sku", "warehouse", "ticket_line")
                 .order_by("ticket_line_id", "unit_no")),
        "refunds", "events__actor")


@extend_schema_view(
    list=extend_schema(responses={200: TicketSerializer(many=True), **error_responses(400, 404, *COMMON_ERRORS)}),
    retrieve=extend_schema(parameters=[TICKET_ID],
                           responses={200: TicketDetailSerializer, **error_responses(404, *COMMON_ERRORS)}),
)
class TicketViewSet(KnownQueryParamsMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                    viewsets.GenericViewSet):
    permission_classes = [TicketPermission]
    filterset_class = TicketAPIFilter
    parser_classes = [JSONParser]
    queryset = Ticket.objects.none()  # the schema reads the model from here; get_queryset answers

    def get_queryset(self):
        if self.action == "list":
            return Ticket.objects.select_related("order", "store", "owner").order_by("-created_at", "-id")
        return _detail_queryset()

    def get_serializer_class(self):
        if self.action == "list":
            return TicketSerializer
        return TicketDetailSerializer

    def get_object(self):
        pk = _ticket_id(self.kwargs.get("pk"))
        ticket = _detail_queryset().filter(pk=pk).first()
        if ticket is None:
            raise NotFoundError(_("Ticket %(id)s does not exist.") % {"id": pk}, code="ticket_not_found")
        return ticket

    def _detail(self, ticket: Ticket) -> dict:
        return TicketDetailSerializer(_detail_queryset().get(pk=ticket.pk), context=self.get_serializer_context()).data

    @extend_schema(request=TicketCreateSerializer,
                   responses={201: TicketDetailSerializer, **error_responses(400, 404, 415, *COMMON_ERRORS)})
    def create(self, request, *args, **kwargs):
        """Open a ticket on some lines of an order, as customer service does on the order page. Every problem
        comes back at once as 400 ticket_invalid with per-field errors ("lines[0].quantity": more than shipped
        less other tickets; "lines[0].amount": more than paid; "order": outside the return window); an unknown
        order is 404 order_not_found. The store's auto-approval rules may approve it at once."""
        body = TicketCreateSerializer(data=request.data)
        if not body.is_valid():
            raise ValidationFailed(_("The after-sales request is not valid."), code="ticket_invalid",
                                   data=field_errors_flat(body.errors))
        data = body.validated_data
        ticket = flows.ticket_open(order_id=data["order"], type=data["type"], reason=data["reason"],
                                   lines=body.line_inputs(), reason_text=data["reason_text"],
                                   shipping_amount=data["shipping_amount"],
                                   return_tracking_number=data["return_tracking_number"], source="desk",
                                   actor=request.user, actor_label="api")
        return Response(self._detail(ticket), status=status.HTTP_201_CREATED)

    @extend_schema(parameters=[TICKET_ID], request=TicketTransitionSerializer,
                   responses={200: TicketDetailSerializer, **error_responses(400, 404, 409, 415, *COMMON_ERRORS)})
    @action(detail=True, methods=["post"])
    def transition(self, request, pk=None):
        """Act on the ticket by name, then whatever it sets off (waiting for the return, the refund, the replacement):
        approve, reject, await_return (returns and exchanges) and close move it; receiving and grading happen unit
        by unit at the receiving station and a replacement is shipped by its parcel, so none of them is an action
        here; start_refund pays an approved refund only or compensation, or a graded return, through the
        refunds flow (a refund row, sent to the platform; the ticket is refunded when the platform confirms);
        retry_refund sends a refund the platform refused again; create_replacement makes the replacement order
        of an approved resend or a graded exchange that has none. The ticket is refunded only by the money going
        out, never by name (confirm_refund is not an action). 409 transition_not_allowed (or refund_not_allowed,
        refund_retry_not_allowed, replacement_not_allowed) when the ticket's state does not allow it,
        400 unknown_transition, 400 amount_out_of_range for an approved amount above the request,
        400 replacement_invalid with per-line reasons (a SKU no longer sold), 404 ticket_not_found."""
        ticket_id = _ticket_id(pk)
        body = TicketTransitionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        ticket = flows.ticket_apply_transition(ticket_id=ticket_id, name=data["name"], actor=request.user,
                                               actor_label="api", reason=data["reason"],
                                               approved_amount=data.get("approved_amount"))
        return Response(self._detail(ticket))
