"""Logs never hold a phone number in full: Django's loggers, runserver's request lines and gunicorn's access log."""

import io
import logging
import sys
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.contrib.auth import get_user_model
from django.core.servers.basehttp import WSGIRequestHandler
from django.test import Client
from gunicorn.config import Config

from oms import gunicorn_conf
from oms.celery import app

PHONE, MASKED = "13800138000", "138****8000"


@contextmanager
def log_output(*logger_names: str):
    """Everything the configured handlers write for these loggers (the real handlers, filters and formatters).

    Each handler a record from these loggers reaches is pointed at one buffer; pytest's own capture
    handlers are left out because they are not part of the project's logging.
    """
    handlers = set()
    for name in logger_names:
        logger = logging.getLogger(name)
        while logger is not None:
            handlers.update(h for h in logger.handlers if isinstance(h, logging.StreamHandler)
                            and not type(h).__module__.startswith("_pytest"))
            logger = logger.parent if logger.propagate else None
    buffer = io.StringIO()
    previous = {handler: handler.setStream(buffer) for handler in handlers}
    try:
        yield buffer
    finally:
        for handler, stream in previous.items():
            handler.setStream(stream)


@pytest.fixture
def user_without_roles(db):
    return get_user_model().objects.create_user(username="no_roles", password="x")


def test_a_403_in_debug_is_one_masked_line_without_a_traceback(settings, user_without_roles):
    settings.DEBUG = True  # Django's own console handler only writes under DEBUG
    client = Client()
    client.force_login(user_without_roles)
    with log_output("django.request") as out:
        response = client.get(f"/orders/{PHONE}/?q={PHONE}")
    assert response.status_code == 403
    lines = out.getvalue().splitlines()
    assert len(lines) == 1, out.getvalue()
    assert lines[0].endswith(f"level=WARNING logger=django.request Forbidden (Permission denied): /orders/{MASKED}/")
    assert PHONE not in out.getvalue()


def test_runserver_request_lines_are_masked_and_written_once(settings):
    settings.DEBUG = True
    handler = WSGIRequestHandler.__new__(WSGIRequestHandler)  # the log call runserver makes for each request
    handler.request = None
    with log_output("django.server") as out:
        handler.log_message('"%s" %s %s', f"GET /orders/?q={PHONE} HTTP/1.1", "200", "5120")
    lines = out.getvalue().splitlines()
    assert len(lines) == 1, out.getvalue()
    assert lines[0].endswith(f'level=INFO logger=django.server "GET /orders/?q={MASKED} HTTP/1.1" 200 5120')


def test_a_server_error_keeps_its_traceback_with_the_phone_masked_everywhere():
    logger = logging.getLogger("orders.views")
    with log_output("orders.views") as out:
        try:
            raise ValueError(f"receiver phone {PHONE} refused")
        except ValueError:
            logger.exception("import failed for %s", "13900001111")
    text = out.getvalue()
    assert "level=ERROR logger=orders.views import failed for 139****1111" in text
    assert "Traceback (most recent call last)" in text
    assert f"ValueError: receiver phone {MASKED} refused" in text
    assert PHONE not in text and "13900001111" not in text


def test_gunicorn_access_log_masks_the_query_string_and_the_referer(capsys):
    cfg = Config()
    for name in ("accesslog", "errorlog", "logger_class"):
        cfg.set(name, getattr(gunicorn_conf, name))
    access_log = logging.getLogger("gunicorn.access")
    try:
        log = cfg.logger_class(cfg)  # its handlers bind sys.stdout now, which capsys captures
        environ = {"REQUEST_METHOD": "GET", "RAW_URI": f"/orders/?q={PHONE}", "SERVER_PROTOCOL": "HTTP/1.1",
                   "PATH_INFO": "/orders/", "QUERY_STRING": f"q={PHONE}", "REMOTE_ADDR": "10.0.0.7",
                   "HTTP_REFERER": "http://oms.lan/orders/?q=13900001111", "HTTP_USER_AGENT": "curl/8"}
        response = SimpleNamespace(status="200 OK", headers=[("Content-Type", "text/html")], sent=5120)
        request = SimpleNamespace(headers=[("HOST", "oms.lan")])
        log.access(response, request, environ, timedelta(milliseconds=12))
        sys.stdout.flush()
        out = capsys.readouterr().out
    finally:
        for logger in (access_log, logging.getLogger("gunicorn.error")):
            logger.handlers = [h for h in logger.handlers if not getattr(h, "_gunicorn", False)]
            logger.filters = []
    lines = out.splitlines()
    assert len(lines) == 1, out
    assert f'"GET /orders/?q={MASKED} HTTP/1.1" 200 5120 "http://oms.lan/orders/?q=139****1111" "curl/8"' in lines[0]
    assert PHONE not in out and "13900001111" not in out


def test_the_image_and_compose_start_gunicorn_with_the_masking_config():
    root = Path(__file__).resolve().parents[2]
    assert '"--config", "python:oms.gunicorn_conf"' in (root / "Dockerfile").read_text()
    assert '"--config", "python:oms.gunicorn_conf"' in (root / "docker-compose.yml").read_text()
    assert gunicorn_conf.logger_class.__name__ == "MaskedGunicornLogger"


def test_celery_workers_keep_the_masked_handlers():
    app.log.setup_logging_subsystem(loglevel="INFO")
    try:
        root_filters = [type(f).__name__ for h in logging.getLogger().handlers for f in h.filters
                        if not type(h).__module__.startswith("_pytest")]
        assert "MaskSensitiveFilter" in root_filters
        task_handlers = [h for h in logging.getLogger("celery.task").handlers
                         if not isinstance(h, logging.NullHandler) and not type(h).__module__.startswith("_pytest")]
        assert task_handlers == [] and logging.getLogger("celery.task").propagate
    finally:
        app.log.already_setup = False
