"""Forms of the reconciliation pages: the settlement file upload, the difference filters, resolve and re-check."""

import re
from datetime import date

from django import forms
from django.utils.translation import gettext_lazy as _

from finance.models import BankMapping, DifferenceReason, DifferenceStatus
from finance.readers.base import SettlementSource
from orders.models import Store

# Larger than a month of 200,000 rows in any provider's export; the whole file is read into memory and kept in
# the database, so a bigger one is refused here with a sentence instead of tiring the web process.
MAX_UPLOAD_BYTES = 50 * 1024 * 1024
RESOLUTION_NOTE_MAX_LENGTH = 2000
_MONTH = re.compile(r"^([0-9]{4})-([0-9]{2})$")


class MonthField(forms.CharField):
    """A month typed as YYYY-MM (the browser's month picker sends that), cleaned to its first day."""

    widget = forms.DateInput(attrs={"type": "month", "placeholder": "2026-11", "maxlength": 7})

    def to_python(self, value):
        text = super().to_python(value)
        if not text:
            return None
        match = _MONTH.fullmatch(text)
        if match is None or not 1 <= int(match.group(2)) <= 12 or not 2000 <= int(match.group(1)) <= 2099:
            raise forms.ValidationError(_("Enter a month as YYYY-MM, e.g. 2026-11."), code="month")
        return date(int(match.group(1)), int(match.group(2)), 1)

    def prepare_value(self, value):
        return value.strftime("%Y-%m") if isinstance(value, date) else value


class SettlementUploadForm(forms.Form):
    """One settlement file or bank statement; what the file holds is the import's to check."""

    source = forms.ChoiceField(label=_("Source"), choices=SettlementSource.choices)
    store = forms.ModelChoiceField(label=_("Store"), queryset=Store.objects.order_by("name"), required=False,
                                   empty_label=_("No store (bank statement)"),
                                   help_text=_("The store the settlement belongs to; a bank statement has none."))
    bank_mapping = forms.ModelChoiceField(label=_("Bank column mapping"), queryset=BankMapping.objects.all(),
                                          required=False, help_text=_("Only for a bank statement."))
    file = forms.FileField(label=_("File"), max_length=255,
                           widget=forms.ClearableFileInput(attrs={"accept": ".csv,.txt,.xlsx,.xls"}),
                           help_text=_("CSV or Excel as downloaded from the provider; at most 50 MB."))

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError(_("The file is larger than %(limit)d MB.") % {"limit": MAX_UPLOAD_BYTES >> 20},
                                        code="too_large")
        return upload

    def clean(self):
        cleaned = super().clean()
        source = cleaned.get("source")
        if source == SettlementSource.BANK:
            if cleaned.get("bank_mapping") is None and "bank_mapping" not in self.errors:
                self.add_error("bank_mapping", _("Choose the bank's column mapping for a bank statement."))
            cleaned["store"] = None  # a statement carries the payouts of every store
        elif source:
            if cleaned.get("store") is None and "store" not in self.errors:
                self.add_error("store", _("Choose the store this settlement belongs to."))
            cleaned["bank_mapping"] = None
        return cleaned


class DifferenceFilterForm(forms.Form):
    """The difference list's filters; every one may be left empty."""

    month = MonthField(label=_("Month"), required=False)
    source = forms.ChoiceField(label=_("Source"), required=False,
                               choices=[("", _("All sources")), *SettlementSource.choices])
    store = forms.ModelChoiceField(label=_("Store"), queryset=Store.objects.order_by("name"), required=False,
                                   empty_label=_("All stores"))
    reason = forms.ChoiceField(label=_("Reason"), required=False,
                               choices=[("", _("All reasons")), *DifferenceReason.choices])
    status = forms.ChoiceField(label=_("Status"), required=False,
                               choices=[("", _("Any status")), *DifferenceStatus.choices])

    def filter(self, queryset):
        data = self.cleaned_data
        for name in ("month", "source", "store", "reason", "status"):
            if data.get(name):
                queryset = queryset.filter(**{name: data[name]})
        return queryset


class DifferenceResolveForm(forms.Form):
    note = forms.CharField(label=_("Resolution note"), max_length=RESOLUTION_NOTE_MAX_LENGTH, strip=True,
                           widget=forms.TextInput(attrs={"placeholder": _("What was found or done")}))


class RecheckForm(forms.Form):
    """One store's settlement source for one month, matched again after a fix."""

    store = forms.ModelChoiceField(label=_("Store"), queryset=Store.objects.order_by("name"),
                                   empty_label=_("Choose a store"))
    source = forms.ChoiceField(label=_("Source"), choices=SettlementSource.choices)
    month = MonthField(label=_("Month"))
