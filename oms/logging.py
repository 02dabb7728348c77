"""Log filters: mask phone numbers and credential-looking values, and keep a client error (4xx) to one line."""

import logging
import re

_PHONE = re.compile(r"(?<!\d)(1[3-9]\d)(\d{4})(\d{4})(?!\d)")
_SECRET = re.compile(r"(?i)((?:secret|token|password|access_token|app_secret|session|sign)[\"']?\s*[:=]\s*[\"']?)([^\s\"',&}]+)")
# Only to render a traceback to text before it is masked; the handler's own formatter does the rest.
_TRACEBACK_FORMATTER = logging.Formatter()


def mask_text(text: str) -> str:
    text = _PHONE.sub(r"\1****\3", text)
    return _SECRET.sub(r"\1***", text)


class MaskSensitiveFilter(logging.Filter):
    """Masks the message with its arguments, the traceback text and the stack text of every record.

    Attach it to every handler (or to a logger that logs directly, like gunicorn's): whatever is
    written has passed through here. Masking twice is harmless (138****8000 no longer matches).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError, KeyError):
            # Arguments that do not fit the format: logging would print them unmasked in its
            # "--- Logging error ---" report, so write them out (masked) as plain text instead.
            message = f"{record.msg} {record.args!r}"
            record.msg, record.args = message, None
        masked = mask_text(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            # Formatter.format() uses exc_text when it is set, so the unmasked traceback is never rendered.
            record.exc_text = _TRACEBACK_FORMATTER.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_text(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_text(record.stack_info)
        return True


class ClientErrorOneLineFilter(logging.Filter):
    """A response below 500 is logged as one line: the traceback of a PermissionDenied or Http404 says
    nothing the status and the path do not, and it repeats the request path (with its personal data)."""

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if isinstance(status, int) and 400 <= status < 500:
            record.exc_info = None
            record.exc_text = None
        return True
