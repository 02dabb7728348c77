"""Forms of the order pages: transition with a reason, hold/release with a reason code, notes."""

from django import forms
from django.utils.translation import gettext_lazy as _

from orders.models import HoldReason


class TransitionForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), max_length=500, required=False)


class HoldForm(forms.Form):
    reason = forms.ChoiceField(label=_("Hold reason"), choices=HoldReason.choices)
    note = forms.CharField(label=_("Note"), max_length=500, required=False)


class NoteForm(forms.Form):
    note = forms.CharField(label=_("Note"), max_length=500, widget=forms.Textarea(attrs={"rows": 2}))
