"""Store setup form: platform, names, sync settings, and write-only credentials per platform."""

from django import forms
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from connectors.services import store_credentials
from connectors.shopify.client import DEFAULT_API_VERSION
from orders.models import Platform, ReserveOn, Store

# The credential fields each platform needs (values are never shown again once saved).
CREDENTIAL_FIELDS = {
    # Shopify's API version is a setting, not a secret: see SHOPIFY_SETTINGS below.
    Platform.SHOPIFY: ["base_url", "access_token", "api_secret", "location_id"],
    Platform.TAOBAO: ["base_url", "app_key", "app_secret", "session", "sign_method"],
    Platform.PDD: ["base_url", "client_id", "client_secret", "access_token"],
    Platform.DOUYIN: ["base_url", "app_key", "app_secret", "access_token"],
    Platform.MANUAL: [],
}
ALL_CREDENTIALS = sorted({name for names in CREDENTIAL_FIELDS.values() for name in names})
SHOPIFY_SETTINGS = ("shopify_api_version", "shopify_authorized_counts_as_paid")

# What a seller calls each key in the platform's developer console (the raw key never shows on the page).
CREDENTIAL_LABELS = {
    "base_url": _("API address or shop domain"),
    "access_token": _("Access Token"),
    "api_secret": _("API secret key"),
    "api_version": _("API version"),
    "location_id": _("Stock location ID"),
    "app_key": _("App Key"),
    "app_secret": _("App Secret"),
    "session": _("Session key"),
    "sign_method": _("Signing method"),
    "client_id": _("Client ID"),
    "client_secret": _("Client Secret"),
}
# Where one key means something else per platform: Shopify's address is the shop's own domain.
PLATFORM_CREDENTIAL_LABELS = {
    (Platform.SHOPIFY, "base_url"): _("Shop domain"),
    (Platform.TAOBAO, "base_url"): _("API address"),
    (Platform.PDD, "base_url"): _("API address"),
    (Platform.DOUYIN, "base_url"): _("API address"),
}


class StoreSetupForm(forms.Form):
    platform = forms.ChoiceField(label=_("Platform"), choices=Platform.choices,
                                 widget=forms.Select(attrs={"data-credential-switch": ""}))
    code = forms.SlugField(label=pgettext_lazy("store", "Code"), max_length=50)
    name = forms.CharField(label=_("Name"), max_length=200)
    active = forms.BooleanField(label=_("Active"), required=False, initial=True)
    default_currency = forms.RegexField(label=_("Default currency"), regex=r"^[A-Z]{3}$", initial="CNY")
    reserve_on = forms.ChoiceField(label=_("Reserve stock on"), choices=ReserveOn.choices, initial=ReserveOn.PAYMENT)
    allow_split = forms.BooleanField(label=_("Allow splitting across warehouses"), required=False)
    sync_enabled = forms.BooleanField(label=_("Sync enabled"), required=False, initial=True)
    poll_interval_seconds = forms.IntegerField(label=_("Poll interval (seconds)"), min_value=10, max_value=86400,
                                               initial=60)
    # Shopify-only settings (kept on the store's ChannelSyncState); shown in their own Shopify section.
    # Help and error texts name the pinned version: filled in per request in __init__ (active language).
    shopify_api_version = forms.RegexField(label=_("Shopify API version"), required=False, max_length=10,
                                           regex=r"^\d{4}-(01|04|07|10)$")
    shopify_authorized_counts_as_paid = forms.BooleanField(
        label=_("Authorized payments count as paid for fulfilment"), required=False, initial=False,
        help_text=_("Turn on if the shop captures payments manually (Shopify Settings → Payments → Manually "
                    "capture payment). Authorized orders are then reserved, routed and picked like paid ones, "
                    "and the payment is captured on Shopify when the whole order has shipped. Shopify Payments "
                    "keeps an authorization for 7 days; if the capture fails the order page says so. Off: "
                    "authorized orders wait as pending payment until they are captured on Shopify."))

    def __init__(self, *args, store: Store | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.store = store
        self.platform = self._known_platform()
        version = self.fields["shopify_api_version"]
        version.help_text = gettext(
            "Leave empty to use %(version)s, the version this system is tested with. Shopify releases a version "
            "every quarter and keeps each for about a year; it answers an expired version with another one, and "
            "the channel page then shows the version it answered with.") % {"version": DEFAULT_API_VERSION}
        version.error_messages["invalid"] = gettext(
            "Enter a Shopify version such as %(version)s (year-month of a quarter).") % {
            "version": DEFAULT_API_VERSION}
        stored_credentials = store_credentials(store)
        for name in ALL_CREDENTIALS:
            stored = bool(stored_credentials.get(name))
            label = PLATFORM_CREDENTIAL_LABELS.get((self.platform, name)) or CREDENTIAL_LABELS.get(name, name)
            self.fields[f"cred_{name}"] = forms.CharField(
                label=label, required=False, max_length=500,
                widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
                help_text=_("stored; leave empty to keep") if stored else "")

    def _known_platform(self) -> str | None:
        """The platform the page is about: the one posted, else the store's; None for a new, unposted store."""
        posted = self.data.get("platform") if self.is_bound else None
        if posted in Platform.values:
            return posted
        return self.store.platform if self.store else None

    def credential_rows(self) -> list[dict]:
        """Credential fields with the platforms that use them; only the known platform's are shown.

        For a new store every row is sent with its platforms (static/js/store_form.js shows the chosen
        platform's); without JavaScript all rows show and only the chosen platform's are used."""
        rows = []
        for name in ALL_CREDENTIALS:
            platforms = [p for p, names in CREDENTIAL_FIELDS.items() if name in names]
            rows.append({"field": self[f"cred_{name}"], "name": name, "platforms": " ".join(platforms),
                         "shown": self.platform is None or self.platform in platforms})
        return rows

    def shopify_settings(self) -> dict:
        """The Shopify section: its fields, and whether the page shows it (unknown platform: shown, JS hides)."""
        return {"fields": [self[name] for name in SHOPIFY_SETTINGS],
                "shown": self.platform in (None, Platform.SHOPIFY)}

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
        current = store_credentials(self.store)
        for name in CREDENTIAL_FIELDS.get(self.cleaned_data["platform"], []):
            value = self.cleaned_data.get(f"cred_{name}", "").strip()
            if value:
                current[name] = value
        return current
