"""The one input guard: control characters (NUL first) are refused at the door or cleaned from platform payloads."""

from __future__ import annotations

import json
import re

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.shortcuts import render
from django.utils.translation import gettext as _

from oms.api_errors import error_body

# C0 controls other than tab, line feed and carriage return. PostgreSQL text and jsonb cannot hold NUL at
# all, and openpyxl refuses the rest in a cell, so a value holding one would later break an Excel export;
# no seller types them, only broken or hostile clients send them.
CONTROL_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")
_CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]")
# A control character written as a JSON escape (\u0000 ... \u001f); only then is a JSON body decoded here.
_ESCAPED_CONTROL = re.compile(rb"\\u00[01][0-9a-fA-F]")
# Answered as JSON {code, message}; every other path gets the error page.
JSON_PATH_PREFIXES = ("/api/", "/webhooks/")
# Webhook bodies are stored as they came and cleaned when mapped (a signed body cannot be changed), so
# there only raw control bytes are refused, not JSON escapes of them. Their views read request.body
# whatever the declared type, so a multipart body is never parsed here (it could not be read after that).
RAW_BODY_PATH_PREFIXES = ("/webhooks/", "/bench/bare-webhook/")


def has_control_chars(text: str) -> bool:
    return bool(CONTROL_CHARS.search(text))


def clean_text(text: str) -> str:
    """The text without the control characters the database or a spreadsheet cannot hold."""
    return CONTROL_CHARS.sub("", text) if text and CONTROL_CHARS.search(text) else text


_ESCAPED_CONTROL_TEXT = re.compile(r"\\u00[01][0-9a-fA-F]")


def json_text_is_clean(text: str) -> bool:
    """True when a JSON document's text has no control character, raw or escaped: decoding it then gives
    clean strings and clean_data has nothing to do (one regex pass instead of a walk over every value)."""
    return not CONTROL_CHARS.search(text) and not _ESCAPED_CONTROL_TEXT.search(text)


def clean_data(value):
    """A decoded JSON value (platform payload, headers) with every string and key cleaned."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_data(key): clean_data(item) for key, item in value.items()}
    if isinstance(value, list):
        return [clean_data(item) for item in value]
    return value


def data_has_control_chars(value) -> bool:
    if isinstance(value, str):
        return has_control_chars(value)
    if isinstance(value, dict):
        return any(data_has_control_chars(key) or data_has_control_chars(item) for key, item in value.items())
    if isinstance(value, list):
        return any(data_has_control_chars(item) for item in value)
    return False


def _querydict_has_control_chars(query: QueryDict) -> bool:
    return any(has_control_chars(key) or any(has_control_chars(v) for v in values) for key, values in query.lists())


def _body_problem(request: HttpRequest) -> str | None:
    content_type = (request.content_type or "").lower()
    raw_only = request.path.startswith(RAW_BODY_PATH_PREFIXES)
    if content_type == "multipart/form-data" and not raw_only:
        # File contents are binary (an .xlsx holds NUL bytes); the form fields and file names are text.
        # Django parses multipart only for POST.
        if request.method == "POST":
            if _querydict_has_control_chars(request.POST):
                return "form"
            if any(has_control_chars(upload.name or "") for _field, uploads in request.FILES.lists()
                   for upload in uploads):
                return "file name"
        return None
    is_json = content_type == "application/json" or content_type.endswith("+json")
    is_form = content_type == "application/x-www-form-urlencoded"
    if not (raw_only or is_json or is_form or content_type.startswith("text/")):
        return None  # binary uploads (octet-stream, images, PDFs) are not text
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None  # the view refuses a bad Content-Length with its own message
    if length <= 0 or length > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
        return None  # nothing to read, or refused as too large before anything is stored
    body = request.body
    if _CONTROL_BYTES.search(body):
        return "body"
    if raw_only:
        return None
    if is_form:
        return "form" if _querydict_has_control_chars(
            QueryDict(body, encoding=request.encoding or settings.DEFAULT_CHARSET)) else None
    if is_json and _ESCAPED_CONTROL.search(body):
        try:
            decoded = json.loads(body)
        except ValueError:
            return None  # not JSON: the view's parser answers that
        if data_has_control_chars(decoded):
            return "body"
    return None


def request_input_problem(request: HttpRequest) -> str | None:
    """Where the request holds a control character that must not reach the database, or None."""
    if has_control_chars(request.path):
        return "path"
    if _querydict_has_control_chars(request.GET):
        return "query"
    if any(has_control_chars(key) or has_control_chars(value) for key, value in request.COOKIES.items()):
        return "cookie"  # a session key or CSRF token is looked up in the database
    if any(has_control_chars(str(value)) for key, value in request.META.items()
           if key.startswith("HTTP_") or key == "CONTENT_TYPE"):
        return "header"  # e.g. an API token
    return _body_problem(request)


def bad_input_response(request: HttpRequest, where: str) -> HttpResponse:
    message = _("The request holds a control character (such as a NUL byte) in its %(where)s, which cannot be "
                "stored. Remove it and try again.") % {"where": _where_label(where)}
    if request.path.startswith(JSON_PATH_PREFIXES):
        return JsonResponse(error_body("bad_input", message, where=where), status=400)
    return render(request, "errors/error.html", {"status": 400, "message": message}, status=400)


def _where_label(where: str) -> str:
    return {"path": _("web address"), "query": _("query string"), "cookie": _("cookies"), "header": _("headers"),
            "form": _("form fields"), "file name": _("file name"), "body": _("request body")}[where]
