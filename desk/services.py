"""Writes of the desk: customer notes (the desk's actions on orders and parcels are pipeline.expedite's)."""

from __future__ import annotations

from django.utils.translation import gettext as _

from desk.customers import BuyerKey
from desk.models import NOTE_MAX_LENGTH, CustomerNote
from oms.exceptions import ValidationFailed
from oms.guard import clean_text


def customer_note_add(*, key: BuyerKey, text: str, author) -> CustomerNote:
    """Write a note about the buyer under every key they are known by, so either key finds it again."""
    text = clean_text(text or "").strip()
    if not text:
        message = _("The note is empty.")
        raise ValidationFailed(message, code="note_empty", data={"text": [message]})
    if len(text) > NOTE_MAX_LENGTH:  # said, not cut: the rest of what was written would be lost
        message = _("A note has at most %(limit_value)d characters.") % {"limit_value": NOTE_MAX_LENGTH}
        raise ValidationFailed(message, code="note_too_long", data={"text": [message]})
    return CustomerNote.objects.create(store_id=key.store_id, buyer_id=key.buyer_id, phone=key.phone, text=text,
                                       author=author)
