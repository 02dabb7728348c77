"""REST API v1 for stock: stock levels (list, detail) and receipts."""

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.parsers import JSONParser
from rest_framework.response import Response

from inventory.filters import StockLevelAPIFilter
from inventory.selectors import stock_level_queryset
from inventory.serializers import StockLevelSerializer, StockReceiptSerializer
from oms.api_errors import error_responses
from oms.api_schema import KnownQueryParamsMixin
from pipeline import stock as pipeline_stock


class StockPermission(permissions.BasePermission):
    """Role permissions per action of the stock endpoints."""

    ACTION_PERMS = {
        "list": "inventory.view_stocklevel", "retrieve": "inventory.view_stocklevel",
        "create": "inventory.add_stockmovement",
    }

    def has_permission(self, request, view) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        if view.action is None and request.method not in view.allowed_methods:
            return True  # no route for this method: the view answers 405 rather than 403
        perm = self.ACTION_PERMS.get(view.action)
        return bool(perm) and request.user.has_perm(perm)


@extend_schema(tags=["stock"])
class StockLevelViewSet(KnownQueryParamsMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Stock per warehouse and SKU. ``low=true`` keeps the rows whose available stock is below 0."""

    permission_classes = [StockPermission]
    serializer_class = StockLevelSerializer
    filterset_class = StockLevelAPIFilter

    def get_queryset(self):
        return stock_level_queryset()


@extend_schema(tags=["stock"])
class StockReceiptViewSet(viewsets.GenericViewSet):
    permission_classes = [StockPermission]
    serializer_class = StockReceiptSerializer
    parser_classes = [JSONParser]  # typed JSON only: form fields would arrive as strings

    @extend_schema(request=StockReceiptSerializer,
                   responses={201: StockLevelSerializer, **error_responses(400, 401, 403, 415)})
    def create(self, request, *args, **kwargs):
        """Goods arrived: on hand goes up by ``quantity``; answers with the stock level after the receipt."""
        body = StockReceiptSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        pipeline_stock.stock_receive(warehouse_id=data["warehouse"].pk, sku_id=data["sku"].pk,
                                     quantity=data["quantity"], reference=data["reference"], note=data["note"],
                                     actor=request.user)
        level = stock_level_queryset().get(warehouse=data["warehouse"], sku=data["sku"])
        return Response(StockLevelSerializer(level).data, status=status.HTTP_201_CREATED)
