"""Forms of the printing pages: a reprint's reason, a printer's settings, a new print bridge."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from inventory.models import Warehouse
from inventory.selectors import scope_filter, warehouses_active, warehouses_for_user
from printing.models import Printer


class ReprintForm(forms.Form):
    reason = forms.CharField(label=gettext_lazy("Reason"), max_length=200, strip=True)


class PrinterForm(forms.ModelForm):
    class Meta:
        model = Printer
        fields = ["code", "name", "warehouse", "paper_width", "transport", "host", "port", "active"]
        help_texts = {
            "host": gettext_lazy(
                "Network: the address the server connects to. Bridge: the address the bridge reaches on its LAN."
            ),
        }

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        warehouses = Warehouse.objects.order_by("priority", "code")
        # A scoped user sets up printers of their own warehouses only.
        self.fields["warehouse"].queryset = (
            warehouses if user is None else scope_filter(warehouses, user=user, warehouse="pk")
        )

    def clean_port(self) -> int:
        port = self.cleaned_data["port"]
        if not 1 <= port <= 65535:
            raise forms.ValidationError(
                _("A TCP port is between 1 and 65535 (thermal printers listen on 9100).")
            )
        return port

    def clean_host(self) -> str:
        host = self.cleaned_data["host"].strip()
        if not host or any(ch.isspace() for ch in host) or "/" in host:
            raise forms.ValidationError(_("Enter a host name or an IP address, without spaces or slashes."))
        return host


class BridgeForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=100)
    warehouse = forms.ModelChoiceField(
        label=gettext_lazy("Warehouse"),
        queryset=warehouses_active(),
    )

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        if user is not None:
            self.fields["warehouse"].queryset = warehouses_for_user(user=user)
