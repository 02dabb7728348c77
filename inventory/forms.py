"""Forms of the stock pages: receipt, stock take, adjustment and the count-sheet upload."""

from django import forms
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from inventory.excel import MAX_UPLOAD_BYTES
from inventory.models import SKU
from inventory.selectors import warehouses_active
from inventory.services import MAX_QUANTITY
from oms.exceptions import DomainError

# MAX_QUANTITY (inventory.services) bounds what one form line may move: far above any real receipt, far
# below the database's 32-bit counters, so a typo or a crafted number is a form error, not a 500.


class _StockForm(forms.Form):
    """Warehouse (active only, by code) and SKU (typed or scanned code) shared by the movement forms."""

    warehouse = forms.ModelChoiceField(label=_("Warehouse"), queryset=warehouses_active(), to_field_name="code",
                                       empty_label=None)
    sku = forms.CharField(label=_("SKU code"), max_length=64,
                          widget=forms.TextInput(attrs={"autocomplete": "off", "autofocus": True}))

    def clean_sku(self) -> SKU:
        code = self.cleaned_data["sku"].strip()
        sku = SKU.objects.filter(code=code).first()
        if sku is None:
            raise forms.ValidationError(_("No SKU has the code %(code)s.") % {"code": code}, code="sku_not_found")
        return sku

    def add_domain_error(self, exc: DomainError) -> None:
        """Show a service refusal on the field it names (its ``data``), else above the form."""
        field = next((name for name in exc.data if name in self.fields), None)
        self.add_error(field, exc.message)


class StockReceiveForm(_StockForm):
    quantity = forms.IntegerField(label=_("Quantity"), min_value=1, max_value=MAX_QUANTITY)
    reference = forms.CharField(label=_("Reference"), max_length=100, required=False,
                                help_text=_("Purchase order or delivery note number."))
    note = forms.CharField(label=_("Note"), max_length=255, required=False)


class StockTakeForm(_StockForm):
    counted = forms.IntegerField(label=_("Counted quantity"), min_value=0, max_value=MAX_QUANTITY)
    reference = forms.CharField(label=_("Reference"), max_length=100, required=False,
                                help_text=_("For example the count sheet number."))


class StockAdjustForm(_StockForm):
    # Zero is left to the service so the rule lives in one place; the form only bounds the size.
    delta = forms.IntegerField(label=pgettext_lazy("stock adjustment", "Change"), min_value=-MAX_QUANTITY, max_value=MAX_QUANTITY,
                               help_text=_("Positive adds to on hand (goods found), negative takes away (damage, loss)."))
    reason = forms.CharField(label=_("Reason"), max_length=255)


class StockTakeImportForm(forms.Form):
    file = forms.FileField(label=_("Count sheet (.xlsx)"),
                           widget=forms.ClearableFileInput(attrs={"accept": ".xlsx"}),
                           help_text=_("Columns warehouse, sku, counted (or 仓库, 商品编码, 盘点数量) under a header "
                                       "row; at most 5 MB and 20,000 rows."))
    reference = forms.CharField(label=_("Reference"), max_length=100, required=False,
                                help_text=_("Written on every ledger row of this count."))

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if not upload.name.lower().endswith(".xlsx"):
            raise forms.ValidationError(_("Upload an Excel .xlsx file."), code="not_xlsx")
        if upload.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError(_("The file is larger than 5 MB."), code="too_large")
        return upload
