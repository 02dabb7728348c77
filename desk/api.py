"""The desk search as JSON (/api/v1/desk/search/?q=…): the same hits as the page, receivers masked without PII rights."""

from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from desk.selectors import SearchKind, desk_search
from desk.views import DESK_PERMISSIONS
from oms.api_errors import error_responses
from oms.exceptions import ValidationFailed
from oms.paging import page_number


class DeskPermission(permissions.BasePermission):
    """Customer service and managers, as the page (a warehouse or finance user is 403)."""

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated and request.user.has_perms(DESK_PERMISSIONS))


class DeskHitSerializer(serializers.Serializer):
    order_id = serializers.IntegerField(source="order.pk")
    number = serializers.CharField(source="order.number")
    platform_order_id = serializers.CharField(source="order.platform_order_id")
    store = serializers.CharField(source="order.store.name")
    status = serializers.CharField(source="order.status")
    placed_at = serializers.DateTimeField(source="order.placed_at")
    total_amount = serializers.DecimalField(source="order.total_amount", max_digits=14, decimal_places=2)
    receiver_name = serializers.CharField(help_text="Masked without the orders.view_pii permission.")
    receiver_phone = serializers.CharField(help_text="Masked without the orders.view_pii permission.")
    matched = serializers.ListField(child=serializers.ChoiceField(choices=SearchKind.choices), source="kinds")
    note = serializers.CharField(help_text="Why a hit may not be the buyer (an encrypted phone matched by its "
                                           "last four digits only).")


class DeskSearchSerializer(serializers.Serializer):
    query = serializers.CharField()
    kinds = serializers.ListField(child=serializers.ChoiceField(choices=SearchKind.choices),
                                  help_text="What the query was taken for, in rank order.")
    page = serializers.IntegerField()
    pages = serializers.IntegerField()
    total = serializers.IntegerField()
    capped = serializers.BooleanField(help_text="Some kind matched more orders than are listed: narrow it down.")
    hits = DeskHitSerializer(many=True)


class DeskSearchView(APIView):
    permission_classes = [DeskPermission]

    @extend_schema(operation_id="desk_search", responses={200: DeskSearchSerializer,
                                                          **error_responses(400, 401, 403, 405)},
                   parameters=[OpenApiParameter("q", str, description="An order number, platform order id, phone "
                                                "(full or last four), tracking or RMA number, or a name."),
                               OpenApiParameter("page", int, required=False)])
    def get(self, request):
        """One search box over the orders, as on the desk page; twenty hits a page, best matches first. An empty
        query finds nothing; one too long or with control characters is 400."""
        query = request.query_params.get("q", "")
        page = request.query_params.get("page") or "1"
        if not page.isascii() or not page.lstrip("-").isdigit():  # a whole number; below 1 or past the end: clamped
            raise ValidationFailed(_("A page is a whole number."), code="invalid", data={"page": [_("Not a number.")]})
        result = desk_search(query=query, user=request.user, page=page_number(page))
        return Response(DeskSearchSerializer(result).data)
