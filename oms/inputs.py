"""Reading ids from request data: what a checkbox list or a URL may carry, refused or skipped safely."""

from collections.abc import Iterable

# More digits than any primary key has; also keeps int() away from huge strings.
MAX_ID_DIGITS = 18


def is_id(value) -> bool:
    """A positive whole number written in ASCII digits ("²" and "١٢" are digits to str.isdigit, not ids)."""
    text = str(value)
    return text.isascii() and text.isdigit() and len(text) <= MAX_ID_DIGITS and int(text) > 0


def parse_ids(values: Iterable) -> list[int]:
    """The ids among the values, in order, without repeats; anything else is left out (callers that must
    say what they left out compare the counts)."""
    return list(dict.fromkeys(int(v) for v in values if is_id(v)))
