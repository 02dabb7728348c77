"""REST API v1 for reconciliation: the differences (list, detail, resolve, reopen), the month's summary per store
and source, and a re-check of one store's month."""

import django_filters
from django.core.validators import RegexValidator
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field, extend_schema_view
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import APIView

from finance.matching import period_match
from finance.models import Difference, DifferenceReason, DifferenceStatus
from finance.readers.base import SettlementSource
from finance.selectors import by_reason, differences_listed, finance_summaries
from finance.serializers import (
    MONTH_PATTERN,
    MONTH_SCHEMA,
    DifferenceSerializer,
    MatchSummarySerializer,
    RecheckSerializer,
    ResolveSerializer,
    SummaryQuerySerializer,
    SummarySerializer,
    parse_month,
)
from finance.services import difference_reopen, difference_resolve, finance_month_refuse_closed
from oms.api_errors import COMMON_ERRORS, error_responses, field_errors_flat
from oms.api_schema import KnownQueryParamsMixin
from oms.exceptions import NotFoundError, ValidationFailed
from oms.inputs import is_id
from orders.models import Store

DIFFERENCE_ID = OpenApiParameter("id", int, OpenApiParameter.PATH, description="The difference's id.")


class FinancePermission(permissions.BasePermission):
    """Finance, managers and admins: reading needs finance.view_difference, changing finance.change_difference."""

    READ = "finance.view_difference"
    CHANGE = "finance.change_difference"
    ACTION_PERMS = {"list": READ, "retrieve": READ, "resolve": CHANGE, "reopen": CHANGE}

    def has_permission(self, request, view) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        if request.method not in view.allowed_methods:
            return True  # no route for this method: the view answers 405 rather than 403
        perm = getattr(view, "required_permission", None) or self.ACTION_PERMS.get(getattr(view, "action", None))
        return bool(perm) and request.user.has_perm(perm)


# An empty filter means no filter, as for the list's other filters.
@extend_schema_field({"anyOf": [MONTH_SCHEMA, {"type": "string", "maxLength": 0}]})
class MonthFilter(django_filters.CharFilter):
    """The month a difference belongs to, as YYYY-MM; anything else is refused (400), not ignored."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("validators", [RegexValidator(MONTH_PATTERN, gettext_lazy(
            "Enter a month as YYYY-MM, e.g. 2026-11."))])
        super().__init__(*args, max_length=7, **kwargs)

    def filter(self, queryset, value):
        month = parse_month(value)
        return queryset if month is None else queryset.filter(month=month)


class DifferenceFilter(django_filters.FilterSet):
    month = MonthFilter(label=gettext_lazy("Month"))
    source = django_filters.ChoiceFilter(choices=SettlementSource.choices, label=gettext_lazy("Source"))
    store = django_filters.CharFilter(field_name="store__code", label=gettext_lazy("Store code"))
    reason = django_filters.ChoiceFilter(choices=DifferenceReason.choices, label=gettext_lazy("Reason"))
    status = django_filters.ChoiceFilter(choices=DifferenceStatus.choices, label=gettext_lazy("Status"))

    class Meta:
        model = Difference
        fields = ["month", "source", "store", "reason", "status"]


def _difference_id(raw) -> int:
    """The id in the path, or 404 difference_not_found for anything that names no difference ("abc", 10**30)."""
    if not is_id(raw):
        raise NotFoundError(_("Difference %(id)s does not exist.") % {"id": str(raw)[:20]},
                            code="difference_not_found")
    return int(raw)


def _difference_queryset():
    return differences_listed()


@extend_schema_view(
    list=extend_schema(responses={200: DifferenceSerializer(many=True), **error_responses(400, 404, *COMMON_ERRORS)}),
    retrieve=extend_schema(parameters=[DIFFERENCE_ID],
                           responses={200: DifferenceSerializer, **error_responses(404, *COMMON_ERRORS)}),
)
class DifferenceViewSet(KnownQueryParamsMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                        viewsets.GenericViewSet):
    """What reconciliation could not match, newest month first; resolved with a note, or reopened."""

    permission_classes = [FinancePermission]
    filterset_class = DifferenceFilter
    parser_classes = [JSONParser]
    serializer_class = DifferenceSerializer
    queryset = Difference.objects.none()  # the schema reads the model from here; get_queryset answers

    def get_queryset(self):
        return _difference_queryset().order_by("-month", "reason", "id")

    def get_object(self):
        pk = _difference_id(self.kwargs.get("pk"))
        difference = _difference_queryset().filter(pk=pk).first()
        if difference is None:
            raise NotFoundError(_("Difference %(id)s does not exist.") % {"id": pk}, code="difference_not_found")
        return difference

    def _answer(self, pk: int) -> Response:
        return Response(DifferenceSerializer(_difference_queryset().get(pk=pk)).data)

    @extend_schema(parameters=[DIFFERENCE_ID], request=ResolveSerializer,
                   responses={200: DifferenceSerializer, **error_responses(400, 404, 409, 415, *COMMON_ERRORS)})
    @action(detail=True, methods=["post"])
    def resolve(self, request, pk=None):
        """Resolve an open difference with a note (who and when are recorded). 409 difference_not_open when it
        is already resolved, 409 finance_period_closed when its month is closed, 404 difference_not_found."""
        # 404 for a difference that does not exist, before the body is looked at.
        if not Difference.objects.filter(pk=_difference_id(pk)).exists():
            raise NotFoundError(_("Difference %(id)s does not exist.") % {"id": pk}, code="difference_not_found")
        body = ResolveSerializer(data=request.data)
        if not body.is_valid():
            raise ValidationFailed(_("The resolution is not valid."), code="invalid",
                                   data=field_errors_flat(body.errors))
        difference = difference_resolve(difference_id=_difference_id(pk), user=request.user,
                                        note=body.validated_data["note"])
        return self._answer(difference.pk)

    @extend_schema(parameters=[DIFFERENCE_ID], request=None,
                   responses={200: DifferenceSerializer, **error_responses(404, 409, *COMMON_ERRORS)})
    @action(detail=True, methods=["post"])
    def reopen(self, request, pk=None):
        """Open a resolved difference again (its resolution is cleared); the next re-check finds it again if it
        still does not match. 409 difference_not_resolved when it is open, 409 finance_period_closed."""
        return self._answer(difference_reopen(difference_id=_difference_id(pk)).pk)


def _query(request) -> dict:
    """The summary's query, checked like a request body: unknown parameters and a bad month are refused."""
    params = {key: request.query_params.get(key) for key in request.query_params if key != "format"}
    # An empty optional filter means no filter, as on the lists.
    params = {key: value for key, value in params.items() if value != "" or key == "month"}
    query = SummaryQuerySerializer(data=params)
    if not query.is_valid():
        raise ValidationFailed(_("The query is not valid."), code="invalid", data=field_errors_flat(query.errors))
    return query.validated_data


class FinanceSummaryView(APIView):
    """GET /api/v1/finance/summaries/: the month's reconciliation per store and source."""

    permission_classes = [FinancePermission]
    required_permission = FinancePermission.READ

    @extend_schema(operation_id="finance_summaries_list", parameters=[SummaryQuerySerializer],
                   responses={200: SummarySerializer(many=True), **error_responses(400, *COMMON_ERRORS)})
    def get(self, request):
        """Per store and source: the month's sale rows, how many were matched and for how much (per currency),
        and the open differences by reason, from what the last matching stored. 400 invalid for a month that
        is not YYYY-MM or an unknown query parameter; an unknown store code summarises nothing."""
        query = _query(request)
        summaries = finance_summaries(month=query["month"], store_code=query.get("store"),
                                      source=query.get("source"))
        return Response(SummarySerializer(summaries, many=True).data)


class FinanceRecheckView(APIView):
    """POST /api/v1/finance/recheck/: match one store's month of a source again."""

    permission_classes = [FinancePermission]
    required_permission = FinancePermission.CHANGE
    parser_classes = [JSONParser]

    @extend_schema(operation_id="finance_recheck", request=RecheckSerializer,
                   responses={200: MatchSummarySerializer, **error_responses(400, 404, 409, 415, *COMMON_ERRORS)})
    def post(self, request):
        """Match the store's settlement rows of the source for the month again, after a fix: open differences
        are found afresh, resolved ones stay. Answers what matching found. 404 store_not_found,
        409 finance_period_closed when the month is closed."""
        body = RecheckSerializer(data=request.data)
        if not body.is_valid():
            raise ValidationFailed(_("The re-check request is not valid."), code="invalid",
                                   data=field_errors_flat(body.errors))
        data = body.validated_data
        store = Store.objects.filter(code=data["store"]).first()
        if store is None:
            raise NotFoundError(_("Store %(code)s does not exist.") % {"code": data["store"]},
                                code="store_not_found")
        finance_month_refuse_closed(store_id=store.pk, month=data["month"])
        # The store's fee rate, once stores carry one; without it fees are checked against the reported fee only.
        summary = period_match(store_id=store.pk, source=data["source"], month=data["month"],
                               fee_rate=getattr(store, "fee_rate", None))
        return Response(MatchSummarySerializer({
            "store": store.code, "source": summary.source, "month": summary.month, "rows": summary.rows,
            "matched": summary.matched, "matched_amount": summary.matched_amount,
            "differences": summary.differences, "differences_by_reason": by_reason(summary.differences_by_reason),
        }).data, status=status.HTTP_200_OK)
