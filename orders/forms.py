"""Forms of the order pages: transition with a reason, cancel with a reason code, hold/release, notes."""

from django import forms
from django.utils.translation import gettext_lazy as _

from orders.models import CancelReason, HoldReason


class TransitionForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), max_length=500, required=False)


class CancelForm(forms.Form):
    """Cancelling needs a reason from the list; "Other" needs the words too (the timeline shows both)."""

    reason_code = forms.ChoiceField(label=_("Cancel reason"), choices=[("", "---------"), *CancelReason.choices],
                                    error_messages={"required": _("Choose why the order is cancelled."),
                                                    "invalid_choice": _("Choose why the order is cancelled.")})
    reason = forms.CharField(label=_("Explanation"), max_length=500, required=False,
                             error_messages={"max_length": _("At most %(limit_value)d characters.")})

    def clean(self):
        data = super().clean()
        if data.get("reason_code") == CancelReason.OTHER and not data.get("reason", "").strip():
            self.add_error("reason", _("Say why the order is cancelled."))
        return data


class HoldForm(forms.Form):
    reason = forms.ChoiceField(label=_("Hold reason"), choices=HoldReason.choices)
    note = forms.CharField(label=_("Note"), max_length=500, required=False)


# The longest note an order keeps (OrderEvent.reason holds 500 characters).
NOTE_MAX_LENGTH = 500


class NoteForm(forms.Form):
    # Each refusal says what is wrong: an empty note and a too long one are different mistakes.
    note = forms.CharField(label=_("Note"), max_length=NOTE_MAX_LENGTH, widget=forms.Textarea(attrs={"rows": 2}),
                           error_messages={"required": _("The note is empty."),
                                           "max_length": _("A note has at most %(limit_value)d characters.")})


class ShipmentForm(forms.Form):
    carrier_code = forms.CharField(label=_("Carrier"), max_length=32, initial="SF")
    tracking_number = forms.CharField(label=_("Tracking number"), max_length=64)
    lines = forms.CharField(label=_("Lines (empty: all)"), max_length=200, required=False,
                            help_text=_("Line numbers separated by commas, for a partial shipment."))

    def clean_lines(self) -> list[int]:
        raw = self.cleaned_data.get("lines", "").replace("，", ",")
        try:
            return sorted({int(part) for part in raw.split(",") if part.strip()})
        except ValueError:
            raise forms.ValidationError(_("Line numbers separated by commas.")) from None

    def clean(self):
        data = super().clean()
        data["line_nos"] = data.get("lines") or []
        return data
