"""Benchmarks run by `manage.py bench <name>`: one module per benchmark, plus the scratch database they share."""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager

import psycopg2
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections
from psycopg2 import sql

DEFAULT_DB_NAME = "oms_bench"


def add_common_arguments(parser) -> None:
    """Options every benchmark understands; a module adds its own in its ``add_arguments``."""
    parser.add_argument("--json", action="store_true",
                        help="end the output with one line holding every figure as a JSON object")
    parser.add_argument("--workers", type=int, default=32, help="concurrent worker threads (default 32)")
    parser.add_argument("--db-name", default=DEFAULT_DB_NAME,
                        help=f"scratch database, dropped and re-created at the start (default {DEFAULT_DB_NAME})")
    parser.add_argument("--keep-db", action="store_true", help="leave the scratch database in place at the end")


def _admin_connection(db: dict):
    """A psycopg2 connection to the server's maintenance database `postgres` (CREATE/DROP DATABASE run there)."""
    options = {key: value for key, value in (db.get("OPTIONS") or {}).items()
               if key in {"sslmode", "sslrootcert", "sslcert", "sslkey", "connect_timeout"}}
    conn = psycopg2.connect(dbname="postgres", user=db.get("USER") or None, password=db.get("PASSWORD") or None,
                            host=db.get("HOST") or None, port=db.get("PORT") or None, **options)
    conn.autocommit = True  # CREATE/DROP DATABASE cannot run inside a transaction block
    return conn


def _drop_database(cursor, name: str) -> None:
    # FORCE (PostgreSQL 13+) ends sessions left over from an interrupted earlier run instead of failing.
    force = sql.SQL(" WITH (FORCE)") if cursor.connection.server_version >= 130000 else sql.SQL("")
    cursor.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)) + force)


@contextmanager
def scratch_database(name: str, *, keep: bool = False, out=None):
    """Point the default connection at a fresh, migrated database ``name`` for the duration of the block.

    Why not the test runner's setup_databases: it uses the TEST name (test_oms) that a concurrent pytest run
    may be using. Instead the bench drops and re-creates its own database through a psycopg2 connection to
    `postgres`, then switches settings.DATABASES["default"]["NAME"] (the very dict the connection handler
    hands to each thread's connection, so worker threads follow) after closing every open connection, and
    migrates it. The user's own database is never written to. At the end the name is switched back and the
    scratch database is dropped unless ``keep``.
    """
    db = settings.DATABASES["default"]
    original = db["NAME"]
    if name == original:
        raise CommandError(f"The scratch database {name!r} is the configured database itself; the benchmark "
                           "drops it. Pass another --db-name.")
    admin = _admin_connection(db)
    try:
        with admin.cursor() as cursor:
            _drop_database(cursor, name)
            cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        connections.close_all()
        db["NAME"] = name
        connections["default"].settings_dict["NAME"] = name  # same dict; set for clarity should it ever differ
        started = time.perf_counter()
        call_command("migrate", verbosity=0, interactive=False)
        if out is not None:
            out.write(f"scratch database {name} created and migrated in {time.perf_counter() - started:.1f} s")
        yield name
    finally:
        connections.close_all()
        db["NAME"] = original
        connections["default"].settings_dict["NAME"] = original
        try:
            if keep:
                if out is not None:
                    out.write(f"scratch database {name} kept (--keep-db)")
            else:
                with admin.cursor() as cursor:
                    _drop_database(cursor, name)
        finally:
            admin.close()


@contextmanager
def production_like_settings():
    """Run with DEBUG off and Celery eager, restored afterwards.

    DEBUG on makes Django log every query in every connection (CursorDebugWrapper), which would slow the
    service down compared with production. Celery eager keeps after-commit tasks (e.g. "retry orders awaiting
    stock" queued by stock_receive) in this process and on the scratch database: with the file-system broker
    of the trial setup they would otherwise be picked up by the user's worker and run against the real data.
    The eager runs log one INFO line each (and kombu warns about the broker URL): quietened meanwhile.
    """
    from celery import current_app

    debug, eager = settings.DEBUG, current_app.conf.task_always_eager
    quiet = [logging.getLogger(name) for name in ("celery.app.trace", "kombu.connection")]
    levels = [logger.level for logger in quiet]
    settings.DEBUG = False
    current_app.conf.task_always_eager = True
    for logger in quiet:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        settings.DEBUG = debug
        current_app.conf.task_always_eager = eager
        for logger, level in zip(quiet, levels, strict=True):
            logger.setLevel(level)
