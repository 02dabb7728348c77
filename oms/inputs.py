"""Reading request input the same way on every page: ids from checkboxes, the query without its page,
a safe "next" address."""

from collections.abc import Iterable

from django.http import HttpRequest
from django.utils.http import url_has_allowed_host_and_scheme

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


def query_without_page(request: HttpRequest) -> str:
    """The page's filters as a query string, for links to other pages of the same list."""
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()


def safe_next(request: HttpRequest) -> str:
    """The ``next`` address a form sent, if it stays on this site (else "": no open redirect)."""
    target = request.POST.get("next", "") or request.GET.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                                  require_https=request.is_secure()):
        return target
    return ""
