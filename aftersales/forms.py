"""Forms of the after-sales desk: the queue filters (page and API), a new ticket from an order, the ticket actions."""

from decimal import Decimal

import django_filters
from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy
from drf_spectacular.utils import extend_schema_field

from aftersales.models import Ticket, TicketReason, TicketStatus, TicketType
from aftersales.selectors import ticket_escalated_q, ticket_overdue_q
from aftersales.services import TicketLineInput
from inventory.models import SKU
from orders.models import AMOUNT_COLUMN_MAX, LINE_MAX_QUANTITY, ORDER_MAX_FEE, Store

YES_NO = [("true", _("Yes")), ("false", _("No"))]
OWNER_CHOICES = [("mine", _("Mine")), ("unassigned", _("Unassigned"))]
# Free text on a ticket: the lengths of the columns that keep it (Ticket.reason_text, TicketEvent.reason).
TEXT_MAX_LENGTH = 500
TRACKING_MAX_LENGTH = 64
SKU_CODE_MAX_LENGTH = SKU._meta.get_field("code").max_length


@extend_schema_field({"type": "string", "enum": [value for value, _label in OWNER_CHOICES]})
class OwnerFilter(django_filters.ChoiceFilter):
    """Whose tickets: a word, not the owner's id (the schema would otherwise take the type of the owner column)."""


class TicketFilter(django_filters.FilterSet):
    """The queue's filters, on the conditions of aftersales.selectors (overdue, escalated); ``owner=mine`` needs
    the request (passed by the page and by DRF)."""

    status = django_filters.MultipleChoiceFilter(choices=TicketStatus.choices, label=_("Status"))
    type = django_filters.ChoiceFilter(choices=TicketType.choices, label=pgettext_lazy("after-sales", "Type"),
                                       empty_label=_("All types"))
    store = django_filters.ModelChoiceFilter(queryset=Store.objects.all(), field_name="store", to_field_name="code",
                                             label=_("Store"), empty_label=_("All stores"))
    overdue = django_filters.ChoiceFilter(choices=YES_NO, method="filter_overdue", label=_("Overdue"),
                                          empty_label=_("Any"))
    owner = OwnerFilter(choices=OWNER_CHOICES, method="filter_owner", label=_("Handled by"), empty_label=_("Anyone"))
    escalated = django_filters.ChoiceFilter(choices=YES_NO, method="filter_escalated", label=_("Escalated"),
                                            empty_label=_("Any"))

    class Meta:
        model = Ticket
        fields = ["status", "type", "store", "overdue", "owner", "escalated"]

    def filter_overdue(self, queryset, name, value):
        condition = ticket_overdue_q(timezone.now())
        return queryset.filter(condition) if value == "true" else queryset.exclude(condition)

    def filter_escalated(self, queryset, name, value):
        condition = ticket_escalated_q()
        return queryset.filter(condition) if value == "true" else queryset.exclude(condition)

    def filter_owner(self, queryset, name, value):
        if value == "unassigned":
            return queryset.filter(owner__isnull=True)
        user = getattr(self.request, "user", None)
        return queryset.filter(owner_id=user.pk) if user is not None and user.is_authenticated else queryset.none()


class TicketAPIFilter(TicketFilter):
    """The API list: the store by its exact code (an unknown code lists nothing), like the orders API."""

    store = django_filters.CharFilter(field_name="store__code", label=_("Store code"), max_length=32)


class TicketNewForm(forms.Form):
    """A ticket typed in by customer service on some of an order's lines.

    One quantity, one amount and one replacement SKU field per order line (``line_<id>_quantity``,
    ``line_<id>_amount``, ``line_<id>_replacement_sku``: an exchange for another size or colour); a line left
    at 0 is not part of the ticket. The limits here only keep out what no column holds; what the order allows
    (shipped, paid, the return window) is the service's to say, and ``add_service_errors`` puts its per-field
    answer ("lines[0].quantity") next to the line it is about.
    """

    type = forms.ChoiceField(label=_("After-sales type"), choices=TicketType.choices, initial=TicketType.RETURN_REFUND)
    reason = forms.ChoiceField(label=_("Reason"), choices=[("", "---------"), *TicketReason.choices],
                               error_messages={"required": _("Choose the buyer's reason.")})
    reason_text = forms.CharField(label=_("Reason in words"), max_length=TEXT_MAX_LENGTH, required=False,
                                  help_text=_("Required for “Other reason”."))
    shipping_amount = forms.DecimalField(label=_("Shipping refund"), max_digits=14, decimal_places=2,
                                         min_value=Decimal("0"), max_value=ORDER_MAX_FEE, required=False,
                                         initial=Decimal("0.00"))
    return_tracking_number = forms.CharField(label=_("Return tracking number"), max_length=TRACKING_MAX_LENGTH,
                                             required=False)

    def __init__(self, *args, lines: list[dict], **kwargs):
        """``lines``: [{"line": OrderLine, "left": units not under other tickets, "paid": paid for those}]."""
        super().__init__(*args, **kwargs)
        self.rows = lines
        for row in lines:
            line = row["line"]
            self.fields[f"line_{line.pk}_quantity"] = forms.IntegerField(
                label=_("Quantity"), min_value=0, max_value=LINE_MAX_QUANTITY, required=False, initial=row["left"])
            self.fields[f"line_{line.pk}_amount"] = forms.DecimalField(
                label=_("Refund amount"), max_digits=14, decimal_places=2, min_value=Decimal("0"),
                max_value=AMOUNT_COLUMN_MAX, required=False,
                widget=forms.NumberInput(attrs={"step": "0.01", "placeholder": str(row["paid"])}))
            self.fields[f"line_{line.pk}_replacement_sku"] = forms.CharField(
                label=_("Exchange for SKU"), max_length=SKU_CODE_MAX_LENGTH, required=False,
                widget=forms.TextInput(attrs={"placeholder": _("Same SKU"), "autocomplete": "off"}),
                help_text=_("Exchange only: the SKU code sent instead (another size or colour)."))
        # The service numbers the lines it was given; this maps its "lines[i]" back to the order line.
        self.sent_line_ids: list[int] = []

    def line_fields(self) -> list[dict]:
        return [{**row, "quantity": self[f"line_{row['line'].pk}_quantity"],
                 "amount": self[f"line_{row['line'].pk}_amount"],
                 "replacement_sku": self[f"line_{row['line'].pk}_replacement_sku"]} for row in self.rows]

    def clean(self):
        data = super().clean()
        if data.get("shipping_amount") is None:
            data["shipping_amount"] = Decimal("0")
        return data

    def line_inputs(self) -> list[TicketLineInput]:
        inputs = []
        self.sent_line_ids = []
        for row in self.rows:
            pk = row["line"].pk
            quantity = self.cleaned_data.get(f"line_{pk}_quantity") or 0
            if quantity <= 0:
                continue
            inputs.append(TicketLineInput(order_line_id=pk, quantity=quantity,
                                          amount=self.cleaned_data.get(f"line_{pk}_amount"),
                                          replacement_sku=(self.cleaned_data.get(f"line_{pk}_replacement_sku")
                                                           or "").strip()))
            self.sent_line_ids.append(pk)
        return inputs

    def add_service_errors(self, errors: dict) -> None:
        """The service's per-field refusals as form errors; what names no field of the form is a form error."""
        for key, messages in errors.items():
            field = None
            if key.startswith("lines[") and "]." in key:
                index, _dot, part = key[len("lines["):].partition("].")
                if index.isdigit() and int(index) < len(self.sent_line_ids):
                    suffix = part if part in ("amount", "replacement_sku") else "quantity"
                    name = f"line_{self.sent_line_ids[int(index)]}_{suffix}"
                    field = name if name in self.fields else None
            elif key in self.fields:
                field = key
            for message in messages:
                self.add_error(field, message)


class ApproveForm(forms.Form):
    approved_amount = forms.DecimalField(label=_("Approved amount"), max_digits=14, decimal_places=2,
                                         min_value=Decimal("0"), max_value=AMOUNT_COLUMN_MAX, required=False)
    reason = forms.CharField(label=_("Note"), max_length=TEXT_MAX_LENGTH, required=False)


class ReasonForm(forms.Form):
    """The words that go with a transition; rejecting needs them (the buyer is told why)."""

    reason = forms.CharField(label=_("Reason"), max_length=TEXT_MAX_LENGTH, required=False,
                             error_messages={"max_length": _("At most %(limit_value)d characters.")})


class NoteForm(forms.Form):
    text = forms.CharField(label=_("Note"), max_length=TEXT_MAX_LENGTH, widget=forms.Textarea(attrs={"rows": 2}),
                           error_messages={"required": _("The note is empty."),
                                           "max_length": _("A note has at most %(limit_value)d characters.")})


class TrackingForm(forms.Form):
    tracking_number = forms.CharField(label=_("Return tracking number"), max_length=TRACKING_MAX_LENGTH,
                                      error_messages={"required": _("Enter the return parcel's tracking number.")})
