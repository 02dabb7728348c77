"""Money with two decimals and thousands separators, and raw errors turned into a sentence with a detail toggle."""

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django import template
from django.utils.translation import gettext_lazy as _

register = template.Library()

CURRENCY_SYMBOLS = {"CNY": "¥", "USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "HKD": "HK$"}


@register.filter
def money(value, currency: str = "") -> str:
    """141129.150000000000 → 141,129.15; with a currency code, ¥141,129.15. Empty stays empty."""
    if value is None or value == "":
        return ""
    try:
        amount = Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    except (InvalidOperation, ValueError):
        return str(value)
    text = f"{abs(amount):,.2f}"
    sign = "-" if amount < 0 else ""
    if not currency:
        return f"{sign}{text}"
    symbol = CURRENCY_SYMBOLS.get(currency.upper())
    return f"{sign}{symbol}{text}" if symbol else f"{sign}{text} {currency.upper()}"


# Kinds of failure, tried in this order against the raw error text; the first that matches names it.
# The patterns cover what our transports, connectors and the platforms' APIs put in last_error.
ERROR_KINDS = [
    ("rate_limit", re.compile(r"\b429\b|rate.?limit|too many requests|throttl|频率|限流|isv\.call-limited", re.I),
     _("The platform is asking us to slow down (too many calls). It is retried later by itself.")),
    ("auth", re.compile(r"\b401\b|\b403\b|unauthori[sz]ed|forbidden|auth|token|signature|invalid.?sign|"
                        r"app.?key|secret|session|授权|签名", re.I),
     _("The platform refused our credentials: check the store's keys and tokens, or authorise the app again.")),
    ("printer_offline", re.compile(r"device not found|could not open socket|printer|paper", re.I),
     _("The printer did not answer: check that it is on, has paper and is connected. Its labels wait in the queue.")),
    ("network", re.compile(r"errno|timed? ?out|timeout|unreachable|name or service not known|connection|"
                           r"temporary failure|getaddrinfo|ssl|socket", re.I),
     _("The other side could not be reached over the network. It is retried later by itself.")),
    ("refused", re.compile(r"permanenterror|\b4\d\d\b|refused|rejected|invalid|not allowed|error_response|"
                           r"sub_code|isv\.", re.I),
     _("The platform refused the request: its answer is below.")),
]
UNKNOWN_ERROR = _("Something went wrong: the technical details are below.")


def error_kind(raw: str) -> tuple[str, str]:
    """The kind of a raw error text and the sentence a person reads for it."""
    for kind, pattern, sentence in ERROR_KINDS:
        if pattern.search(raw):
            return kind, str(sentence)
    return "unknown", str(UNKNOWN_ERROR)


@register.inclusion_tag("oms/_error_explained.html")
def error_explained(raw, *, device: str = "") -> dict:
    """A sentence chosen by the kind of error, with the raw text behind a <details> toggle.

    ``device="printer"`` reads a refused connection as a printer that is off, not as the network."""
    raw = str(raw or "")
    kind, sentence = error_kind(raw)
    if device == "printer" and kind == "network":
        kind, sentence = "printer_offline", str(ERROR_KINDS[2][2])
    return {"raw": raw, "kind": kind, "sentence": sentence}
