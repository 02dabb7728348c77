"""Store setup form: platform, names, sync settings, and write-only credentials per platform."""

from django import forms
from django.utils.translation import gettext_lazy as _

from orders.models import Platform, ReserveOn, Store

# The credential fields each platform needs (values are never shown again once saved).
CREDENTIAL_FIELDS = {
    Platform.SHOPIFY: ["base_url", "access_token", "api_secret", "api_version", "location_id"],
    Platform.TAOBAO: ["base_url", "app_key", "app_secret", "session", "sign_method"],
    Platform.PDD: ["base_url", "client_id", "client_secret", "access_token"],
    Platform.DOUYIN: ["base_url", "app_key", "app_secret", "access_token"],
    Platform.MANUAL: [],
}
ALL_CREDENTIALS = sorted({name for names in CREDENTIAL_FIELDS.values() for name in names})


class StoreSetupForm(forms.Form):
    platform = forms.ChoiceField(label=_("Platform"), choices=Platform.choices)
    code = forms.SlugField(label=_("Code"), max_length=50)
    name = forms.CharField(label=_("Name"), max_length=200)
    active = forms.BooleanField(label=_("Active"), required=False, initial=True)
    default_currency = forms.RegexField(label=_("Default currency"), regex=r"^[A-Z]{3}$", initial="CNY")
    reserve_on = forms.ChoiceField(label=_("Reserve stock on"), choices=ReserveOn.choices, initial=ReserveOn.PAYMENT)
    allow_split = forms.BooleanField(label=_("Allow splitting across warehouses"), required=False)
    sync_enabled = forms.BooleanField(label=_("Sync enabled"), required=False, initial=True)
    poll_interval_seconds = forms.IntegerField(label=_("Poll interval (seconds)"), min_value=10, max_value=86400,
                                               initial=60)

    def __init__(self, *args, store: Store | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.store = store
        for name in ALL_CREDENTIALS:
            stored = bool(store and store.credentials.get(name))
            self.fields[f"cred_{name}"] = forms.CharField(
                label=name, required=False, max_length=500,
                widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
                help_text=_("stored; leave empty to keep") if stored else "")

    def clean_code(self):
        code = self.cleaned_data["code"]
        clash = Store.objects.filter(code=code)
        if self.store:
            clash = clash.exclude(pk=self.store.pk)
        if clash.exists():
            raise forms.ValidationError(_("Another store already uses this code."))
        return code

    def credentials(self) -> dict[str, str]:
        """Stored credentials with the fields typed in this time replacing them; others are kept."""
        current = dict(self.store.credentials) if self.store else {}
        for name in CREDENTIAL_FIELDS.get(self.cleaned_data["platform"], []):
            value = self.cleaned_data.get(f"cred_{name}", "").strip()
            if value:
                current[name] = value
        return current
