"""Gunicorn settings for the web container (`gunicorn -c python:oms.gunicorn_conf`): access log through the PII mask."""

import os

from gunicorn.glogging import Logger

from oms.logging import MaskSensitiveFilter

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_WORKERS", "3"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
accesslog = "-"
errorlog = "-"


class MaskedGunicornLogger(Logger):
    """Gunicorn's logger with the project's mask on its access and error logs.

    The access line holds the request line with its query string (?q=13800138000 from the order
    search) and the referer; gunicorn writes it with its own handlers, outside Django's LOGGING, so
    the filter sits on the two loggers themselves and sees every record before any handler does.
    """

    def setup(self, cfg):
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            if not any(isinstance(f, MaskSensitiveFilter) for f in log.filters):
                log.addFilter(MaskSensitiveFilter())


logger_class = MaskedGunicornLogger
