"""Forms of the fulfilment pages: routing rules and carriers (ModelForms), the shipment list filter, and
the small input forms behind the packing, shipment and wave buttons."""

from __future__ import annotations

import json
import re
from typing import Any

from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator
from django.utils.translation import gettext_lazy as _

from fulfillment.carriers import adapter_for
from fulfillment.carriers.base import CarrierError
from fulfillment.models import (
    Carrier,
    CarrierRule,
    ServiceLevel,
    Shipment,
    ShipmentStatus,
    WarehouseRule,
)
from inventory.models import SKU, Warehouse
from orders.models import Priority, Store

# Far above any real parcel, far below the database's integer limits: a typo is a form error, not a 500.
MAX_GRAMS = 1_000_000
# What a carrier's API settings must never show again once saved (matched in the key, any case).
SECRET_WORDS = ("checkword", "secret", "password", "passwd", "token", "api_key", "apikey", "private_key")
SECRET_MASK = "••• set"

# China's 34 province-level divisions as the platforms write them (rules compare names exactly).
CN_PROVINCES = tuple(
    "北京市 天津市 上海市 重庆市 河北省 山西省 辽宁省 吉林省 黑龙江省 江苏省 浙江省 安徽省 "
    "福建省 江西省 山东省 河南省 湖北省 湖南省 广东省 海南省 四川省 贵州省 云南省 陕西省 "
    "甘肃省 青海省 台湾省 内蒙古自治区 广西壮族自治区 西藏自治区 宁夏回族自治区 新疆维吾尔自治区 香港特别行政区 澳门特别行政区".split()
)
_CN_SUFFIXES = ("维吾尔自治区", "壮族自治区", "回族自治区", "特别行政区", "自治区", "省", "市")
_CN_SHORT = {
    next(name.removesuffix(s) for s in _CN_SUFFIXES if name.endswith(s)): name for name in CN_PROVINCES
}
_CJK = re.compile(r"[\u3400-\u9fff]")
# A state or region written in Latin letters: "New Jersey", "NY", "Île-de-France".
_LATIN_REGION = re.compile(r"[^\W\d_](?:[^\W\d_]|[ .'-]){0,63}")
_LIST_SEPARATORS = re.compile(r"[,，、;；\n]+")


# --- Lists edited as comma-separated text ---------------------------------------------------------


class CommaListField(forms.CharField):
    """A JSON list shown and typed as "a, b, c" (Chinese commas too); each item is checked by ``clean_item``,
    which returns the stored value or raises ValidationError. Duplicates are dropped, the order kept."""

    def __init__(self, *, clean_item=None, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("max_length", 2000)
        kwargs.setdefault("widget", forms.TextInput(attrs={"autocomplete": "off"}))
        super().__init__(**kwargs)
        self.clean_item = clean_item or (lambda value: value)

    def prepare_value(self, value):
        if isinstance(value, list | tuple):
            return ", ".join(str(item) for item in value)
        return value

    def to_python(self, value) -> list:
        if isinstance(value, list | tuple):
            value = ", ".join(str(item) for item in value)
        text = super().to_python(value)
        return [item.strip() for item in _LIST_SEPARATORS.split(text) if item.strip()]

    def validate(self, value) -> None:
        if self.required and not value:
            raise forms.ValidationError(self.error_messages["required"], code="required")

    def clean(self, value) -> list:
        items = super().clean(value)
        cleaned, errors = [], []
        for item in items:
            try:
                stored = self.clean_item(item)
            except forms.ValidationError as exc:
                errors.extend(exc.messages)
                continue
            if stored not in cleaned:
                cleaned.append(stored)
        if errors:
            raise forms.ValidationError(errors)
        return cleaned


def clean_province(value: str) -> str:
    if value in CN_PROVINCES:
        return value
    if _CJK.search(value):
        full = _CN_SHORT.get(value)
        if full:
            raise forms.ValidationError(
                _("“%(value)s”: write the full name “%(full)s”, as orders carry it.")
                % {"value": value, "full": full}
            )
        raise forms.ValidationError(_("“%(value)s” is not a Chinese province.") % {"value": value})
    if not _LATIN_REGION.fullmatch(value):
        raise forms.ValidationError(_("“%(value)s” is not a province or state name.") % {"value": value})
    return value


def clean_country(value: str) -> str:
    code = value.upper()
    if not re.fullmatch(r"[A-Z]{2}", code):
        raise forms.ValidationError(
            _("“%(value)s” is not a two-letter country code (CN, US, …).") % {"value": value}
        )
    return code


def clean_priority(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = None
    if number not in Priority.values:
        choices = ", ".join(f"{p.value} {p.label}" for p in Priority)
        raise forms.ValidationError(
            _("“%(value)s” is not a customer tier (%(choices)s).") % {"value": value, "choices": choices}
        )
    return number


def clean_service(value: str) -> str:
    if value not in ServiceLevel.values:
        raise forms.ValidationError(
            _("“%(value)s” is not a service (%(choices)s).")
            % {"value": value, "choices": ", ".join(ServiceLevel.values)}
        )
    return value


def clean_category(value: str) -> str:
    if not SKU.objects.filter(category=value).exists():
        raise forms.ValidationError(_("No SKU has the category “%(value)s”.") % {"value": value})
    return value


def clean_warehouse_code(value: str) -> str:
    code = value.upper()
    if not Warehouse.objects.filter(code=code).exists():
        raise forms.ValidationError(_("No warehouse has the code “%(value)s”.") % {"value": value})
    return code


# --- Routing rules --------------------------------------------------------------------------------


class _RuleForm(forms.ModelForm):
    """The conditions shared by warehouse and carrier rules; an empty condition matches everything."""

    countries = CommaListField(
        label=_("Destination countries"), clean_item=clean_country, help_text=_("Two-letter codes: CN, US.")
    )
    provinces = CommaListField(
        label=_("Destination provinces/states"),
        clean_item=clean_province,
        help_text=_("Full names as orders carry them: 上海市, 广东省, New Jersey."),
    )
    priorities = CommaListField(
        label=_("Customer tiers"), clean_item=clean_priority, help_text=_("0 normal, 1 high, 2 VIP.")
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["store"].queryset = Store.objects.order_by("code")
        self.fields["store"].empty_label = _("Any store")

    def _check_range(self, low: str, high: str) -> None:
        data = self.cleaned_data
        if data.get(low) is not None and data.get(high) is not None and data[low] > data[high]:
            self.add_error(high, _("The maximum is below the minimum."))


class WarehouseRuleForm(_RuleForm):
    categories = CommaListField(
        label=_("SKU categories"),
        clean_item=clean_category,
        help_text=_("Matches when any line's SKU is in one of these categories."),
    )

    class Meta:
        model = WarehouseRule
        fields = [
            "name",
            "active",
            "store",
            "countries",
            "provinces",
            "priorities",
            "categories",
            "min_amount",
            "max_amount",
            "warehouse",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["warehouse"].queryset = Warehouse.objects.filter(active=True).order_by("priority", "code")

    def clean(self):
        data = super().clean()
        self._check_range("min_amount", "max_amount")
        return data


class CarrierRuleForm(_RuleForm):
    services = CommaListField(
        label=_("Promised services"),
        clean_item=clean_service,
        help_text=_("standard, express, next_morning. Matches orders promised one of these."),
    )
    warehouses = CommaListField(
        label=_("From warehouses (codes)"),
        clean_item=clean_warehouse_code,
        help_text=_("For example SH, BJ."),
    )

    class Meta:
        model = CarrierRule
        fields = [
            "name",
            "active",
            "store",
            "countries",
            "provinces",
            "priorities",
            "services",
            "warehouses",
            "min_weight_grams",
            "max_weight_grams",
            "carrier",
            "service",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["carrier"].queryset = Carrier.objects.filter(active=True).order_by("code")
        for name in ("min_weight_grams", "max_weight_grams"):
            self.fields[name].validators.append(MaxValueValidator(MAX_GRAMS))
            self.fields[name].widget.attrs["max"] = MAX_GRAMS

    def clean(self):
        data = super().clean()
        self._check_range("min_weight_grams", "max_weight_grams")
        carrier, service = data.get("carrier"), data.get("service")
        if carrier and service and not carrier.offers(service):
            self.add_error(
                "service",
                _("%(carrier)s does not offer %(service)s.")
                % {"carrier": carrier.name, "service": ServiceLevel(service).label},
            )
        return data


# --- Carriers -------------------------------------------------------------------------------------


def is_secret_key(key: str) -> bool:
    lowered = str(key).lower()
    return any(word in lowered for word in SECRET_WORDS)


def config_masked(config: Any, *, mask: str = SECRET_MASK) -> Any:
    """The config with every secret value replaced by ``mask`` (nested objects too)."""
    if isinstance(config, dict):
        return {
            key: (mask if value not in ("", None) else value)
            if is_secret_key(key) and not isinstance(value, dict)
            else config_masked(value, mask=mask)
            for key, value in config.items()
        }
    if isinstance(config, list):
        return [config_masked(item, mask=mask) for item in config]
    return config


def config_merge_secrets(new: Any, old: Any) -> Any:
    """A secret left as the mask or blank keeps its stored value; a key left out is removed."""
    if not isinstance(new, dict):
        return new
    old = old if isinstance(old, dict) else {}
    merged = {}
    for key, value in new.items():
        if is_secret_key(key) and not isinstance(value, dict) and value in ("", None, SECRET_MASK):
            if old.get(key) not in ("", None):
                merged[key] = old[key]
            continue
        merged[key] = config_merge_secrets(value, old.get(key))
    return merged


def config_keys_summary(config: dict) -> list[tuple[str, str]]:
    """(key, shown value) pairs for lists: secrets masked, long values cut."""
    rows = []
    for key, value in sorted((config or {}).items()):
        if is_secret_key(key):
            shown = SECRET_MASK if value not in ("", None) else "—"
        elif isinstance(value, dict | list):
            shown = "{…}" if isinstance(value, dict) else "[…]"
        else:
            shown = str(value)[:60]
        rows.append((key, shown))
    return rows


class CarrierForm(forms.ModelForm):
    """A carrier account. Its API settings are JSON; secrets are write-only: shown as "••• set", kept when
    left so (or blank), and never echoed back, not even after a form error."""

    code = forms.RegexField(
        label=_("Carrier code"),
        regex=r"^[A-Za-z0-9_]{1,16}$",
        max_length=16,
        help_text=_("SF, YTO, ZTO, USPS… (letters, digits, _)."),
        error_messages={"invalid": _("Use 1 to 16 letters, digits or _.")},
    )
    services = CommaListField(
        label=_("Services offered"),
        clean_item=clean_service,
        help_text=_("standard, express, next_morning. Empty means standard only."),
    )
    config = forms.CharField(
        label=_("API settings (JSON)"),
        required=False,
        max_length=10_000,
        widget=forms.Textarea(attrs={"rows": 8, "class": "mono", "spellcheck": "false"}),
        help_text=_(
            "A JSON object, e.g. base_url, partner_id, checkword for SF. Secrets show as “••• set”: leave them "
            "so (or blank) to keep them, type a new value to replace them, remove the key to delete it."
        ),
    )

    class Meta:
        model = Carrier
        fields = ["code", "name", "kind", "active", "services", "cost_first_kg", "cost_extra_kg", "config"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        stored = self.instance.config if self.instance.pk else {}
        self.initial["config"] = json.dumps(config_masked(stored or {}), ensure_ascii=False, indent=2)
        for name in ("cost_first_kg", "cost_extra_kg"):
            self.fields[name].validators.append(MinValueValidator(0))
            self.fields[name].widget.attrs["min"] = 0

    def clean_code(self) -> str:
        return self.cleaned_data["code"].upper()

    def clean_config(self) -> dict:
        text = (self.cleaned_data.get("config") or "").strip() or "{}"
        try:
            config = json.loads(text)
        except json.JSONDecodeError as exc:
            # The decoder's message names a position only, never the text.
            raise forms.ValidationError(
                _("Not valid JSON: %(error)s")
                % {"error": f"{exc.msg} (line {exc.lineno}, column {exc.colno})"}
            ) from None
        if not isinstance(config, dict):
            raise forms.ValidationError(_("The API settings must be a JSON object: {…}."))
        try:  # what PostgreSQL's jsonb cannot hold: NaN, Infinity (also 1e400) and NUL characters
            stored = json.dumps(config, allow_nan=False)
        except ValueError:
            raise forms.ValidationError(_("Numbers in the API settings must be finite.")) from None
        if "\\u0000" in stored:
            raise forms.ValidationError(_("The API settings may not contain NUL characters."))
        return config_merge_secrets(config, self.instance.config if self.instance.pk else {})

    def clean(self):
        data = super().clean()
        kind, config = data.get("kind"), data.get("config")
        if kind and config is not None:
            try:
                adapter_for(kind, config)  # builds the client only: no network
            except (CarrierError, LookupError) as exc:
                self.add_error(
                    "config", _("These settings do not work for this carrier: %(error)s") % {"error": exc}
                )
        return data

    def full_clean(self):
        super().full_clean()
        if self.is_bound and self._errors and "config" in self.data:
            # Re-shown after an error: stored secrets as the mask, newly typed ones blank (type them again).
            try:
                typed = json.loads(self.data.get("config") or "{}")
            except json.JSONDecodeError:
                typed = None
            data = self.data.copy()
            if isinstance(typed, dict):
                shown = config_masked(
                    config_merge_secrets(typed, self.instance.config if self.instance.pk else {})
                )
                data["config"] = json.dumps(_blank_new_secrets(typed, shown), ensure_ascii=False, indent=2)
            else:
                # Unreadable: we cannot tell secrets from the rest, so show none of it back.
                data["config"] = self.initial.get("config", "{}")
                if "config" not in self._errors:
                    self.add_error("config", _("Type the API settings again."))
            self.data = data


def _blank_new_secrets(typed: dict, shown: dict) -> dict:
    """Secrets typed in this time (not the mask, not blank) show as blank: the new value is not echoed."""
    result = {}
    for key, value in shown.items():
        if is_secret_key(key) and not isinstance(value, dict):
            was = typed.get(key)
            result[key] = value if was in ("", None, SECRET_MASK) else ""
        elif isinstance(value, dict) and isinstance(typed.get(key), dict):
            result[key] = _blank_new_secrets(typed[key], value)
        else:
            result[key] = value
    return result


# --- Packing --------------------------------------------------------------------------------------


class ScanForm(forms.Form):
    code = forms.CharField(
        label=_("Scan"),
        max_length=128,
        strip=True,
        error_messages={"required": _("Scan a barcode first.")},
        widget=forms.TextInput(attrs={"autocomplete": "off", "autofocus": True, "enterkeyhint": "go"}),
    )


class PackForm(forms.Form):
    weight_grams = forms.IntegerField(
        label=_("Weight (g)"),
        required=False,
        min_value=1,
        max_value=MAX_GRAMS,
        error_messages={"invalid": _("Enter the weight in whole grams.")},
        widget=forms.NumberInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
    )


# --- Shipment actions -----------------------------------------------------------------------------


class ReasonForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), max_length=300)


class ShipmentMoveForm(forms.Form):
    """A card's move (kanban buttons and drag and drop): the column it goes to and, for an exception, why."""

    to = forms.ChoiceField(choices=ShipmentStatus.choices,
                           error_messages={"invalid_choice": _("That is not a column of the kanban.")})
    reason = forms.CharField(max_length=300, required=False,  # Shipment.exception_reason
                             error_messages={"max_length": _("Say what is wrong in at most %(max)s characters.")
                                             % {"max": 300}})

    def clean(self) -> dict:
        data = super().clean()
        # The browser's "required" is no check: an exception nobody can read helps no one at the packing desk.
        if data.get("to") == ShipmentStatus.EXCEPTION and not data.get("reason") and "reason" not in self.errors:
            self.add_error("reason", forms.ValidationError(_("Say what the problem is."), code="reason_required"))
        return data


class OptionalReasonForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), max_length=300, required=False)


class TrackingNumberForm(forms.Form):
    """The one tracking-number field (parcel page and kanban card): a barcode scanner types and sends Enter."""

    tracking_number = forms.CharField(
        label=_("Tracking number"),
        max_length=64,
        error_messages={"required": _("Scan or type the tracking number.")},
        widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false",
                                      "enterkeyhint": "done"}),
    )


class ShipForm(forms.Form):
    tracking_number = forms.CharField(
        label=_("Tracking number"),
        max_length=64,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
        help_text=_("For carriers without an API: scan or type the number on the waybill."),
    )


class OverrideCarrierForm(forms.Form):
    carrier = forms.ModelChoiceField(label=_("Carrier"), queryset=Carrier.objects.none())
    service = forms.ChoiceField(label=_("Service"), choices=ServiceLevel.choices)
    reason = forms.CharField(label=_("Reason"), max_length=300)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["carrier"].queryset = Carrier.objects.filter(active=True).order_by("code")


class OverrideWarehouseForm(forms.Form):
    warehouse = forms.ModelChoiceField(label=_("Warehouse"), queryset=Warehouse.objects.none())
    reason = forms.CharField(label=_("Reason"), max_length=300)

    def __init__(self, *args, exclude_id: int | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["warehouse"].queryset = Warehouse.objects.filter(active=True).exclude(pk=exclude_id)


class MergeForm(forms.Form):
    """Parcels to merge into this one, chosen among its merge candidates."""

    shipments = forms.ModelMultipleChoiceField(
        label=_("Parcels"),
        queryset=Shipment.objects.none(),
        error_messages={
            "required": _("Choose the parcels to merge."),
            "invalid_choice": _("Parcel %(value)s cannot be merged with this one (any more)."),
            "invalid_pk_value": _("“%(pk)s” is not a parcel."),
        },
    )
    reason = forms.CharField(label=_("Reason"), max_length=300, required=False)

    def __init__(self, *args, candidates=None, **kwargs):
        super().__init__(*args, **kwargs)
        if candidates is not None:
            self.fields["shipments"].queryset = candidates


class SplitForm(forms.Form):
    """One quantity field per line: the units that move to the new parcel."""

    reason = forms.CharField(label=_("Reason"), max_length=300, required=False)

    def __init__(self, *args, lines=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.line_fields = []
        for line in lines:
            name = f"qty_{line.pk}"
            self.fields[name] = forms.IntegerField(
                label=line.sku.code,
                min_value=0,
                max_value=line.quantity,
                initial=0,
                required=False,
                error_messages={"invalid": _("Enter a whole number.")},
                widget=forms.NumberInput(attrs={"min": 0, "max": line.quantity, "class": "qty"}),
            )
            self.line_fields.append((line, name))

    def quantities(self) -> dict[int, int]:
        return {line.pk: self.cleaned_data.get(name) or 0 for line, name in self.line_fields}

    def bound_lines(self):
        return [(line, self[name]) for line, name in self.line_fields]


# --- Waves ----------------------------------------------------------------------------------------


class WaveSelectionForm(forms.Form):
    """Parcels of one warehouse waiting to be picked, ticked in the list."""

    warehouse = forms.ModelChoiceField(
        label=_("Warehouse"), queryset=Warehouse.objects.filter(active=True), to_field_name="code"
    )
    shipments = forms.ModelMultipleChoiceField(
        label=_("Parcels"),
        queryset=Shipment.objects.none(),
        error_messages={
            "required": _("Choose the parcels for the wave."),
            "invalid_choice": _("Parcel %(value)s is not waiting to be picked in this warehouse (any more)."),
            "invalid_pk_value": _("“%(pk)s” is not a parcel."),
        },
    )
    description = forms.CharField(label=_("Description"), max_length=200, required=False)

    def __init__(self, *args, candidates=None, **kwargs):
        super().__init__(*args, **kwargs)
        if candidates is not None:
            self.fields["shipments"].queryset = candidates


class WaveRuleForm(forms.Form):
    warehouse = forms.ModelChoiceField(
        label=_("Warehouse"), queryset=Warehouse.objects.filter(active=True), to_field_name="code"
    )
    carrier = forms.ModelChoiceField(
        label=_("Carrier"),
        queryset=Carrier.objects.filter(active=True).order_by("code"),
        to_field_name="code",
        required=False,
        empty_label=_("Any carrier"),
    )
    province = forms.CharField(label=_("Province"), max_length=64, required=False)
    limit = forms.IntegerField(label=_("Up to (parcels)"), min_value=1, max_value=500, initial=50)


class DryRunForm(forms.Form):
    limit = forms.IntegerField(
        label=_("Last routed orders"), min_value=1, max_value=1000, initial=100, required=False
    )
    # A new rule starts switched off: these try it (at its place in the order) before anyone relies on it.
    warehouse_rule = forms.ModelMultipleChoiceField(
        label=_("Also try these switched-off warehouse rules"),
        queryset=WarehouseRule.objects.filter(active=False).order_by("position", "id"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    carrier_rule = forms.ModelMultipleChoiceField(
        label=_("Also try these switched-off carrier rules"),
        queryset=CarrierRule.objects.filter(active=False, carrier__active=True).order_by("position", "id"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    all = forms.BooleanField(label=_("Show every order checked"), required=False)
