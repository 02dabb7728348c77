"""Log filter that masks phone numbers and credential-looking values before a record is written."""

import logging
import re

_PHONE = re.compile(r"(?<!\d)(1[3-9]\d)(\d{4})(\d{4})(?!\d)")
_SECRET = re.compile(r"(?i)((?:secret|token|password|access_token|app_secret|session|sign)[\"']?\s*[:=]\s*[\"']?)([^\s\"',&}]+)")


def mask_text(text: str) -> str:
    text = _PHONE.sub(r"\1****\3", text)
    return _SECRET.sub(r"\1***", text)


class MaskSensitiveFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_text(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True
