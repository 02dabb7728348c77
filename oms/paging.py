"""The page-number parser every list view uses: a bad or huge ``?page=`` is page 1 or the last page, never a 500."""

from django.core.paginator import Paginator

DEFAULT_MAX_PAGE = 10_000


def page_number(raw, *, max_page: int = DEFAULT_MAX_PAGE) -> int:
    """``?page=`` as an int between 1 and ``max_page``; anything else (text, NUL, 10**100) is 1."""
    try:
        number = int(str(raw).strip())
    except (TypeError, ValueError):
        return 1
    return min(max(number, 1), max_page)


def paginate(request, items, per_page: int):
    """The page of ``items`` that ``?page=`` asks for (clamped to the pages there are)."""
    return Paginator(items, per_page).get_page(page_number(request.GET.get("page")))
