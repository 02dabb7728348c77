"""Settings from the environment: production passes check --deploy, migrations are complete, modes switch."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_ENV = {
    "DJANGO_DEBUG": "0",
    "DJANGO_SECRET_KEY": "x7!kq2#production-secret-for-the-check-deploy-test-9f8e7d6c5b4a3",
    "DJANGO_ALLOWED_HOSTS": "oms.example.com",
}


def manage(*args: str, env: dict | None = None, extra_env: dict | None = None) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL", "REDIS_URL"))}
    run_env = {**base, **(env if env is not None else {}), **(extra_env or {})}
    run_env["OMS_VAR_DIR"] = str(ROOT / "var" / "test-settings")
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=run_env, capture_output=True,
                          text=True, timeout=120)


def test_production_settings_pass_check_deploy_without_warnings():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_without_secret_key_refuses_to_start():
    result = manage("check", env={"DJANGO_DEBUG": "0", "DJANGO_ALLOWED_HOSTS": "x"})
    assert result.returncode != 0 and "DJANGO_SECRET_KEY" in result.stderr


def test_migrations_are_complete():
    result = manage("makemigrations", "--check", "--dry-run", env={})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No changes detected" in result.stdout


def test_embedded_default_is_sqlite_wal_and_filesystem_broker():
    code = ("from django.conf import settings; from django.db import connection; "
            "c = connection.cursor(); c.execute('PRAGMA journal_mode'); "
            "print(connection.vendor, c.fetchone()[0], settings.CELERY_BROKER_URL, settings.TIME_ZONE, "
            "settings.LANGUAGE_CODE)")
    result = manage("shell", "-c", code, env={})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-5:] == ["sqlite", "wal", "filesystem://", "Asia/Shanghai", "zh-hans"]


@pytest.mark.parametrize("value", ["maybe", "2"])
def test_bad_boolean_is_a_clear_error(value):
    result = manage("check", env={"DJANGO_DEBUG": value})
    assert result.returncode != 0 and "DJANGO_DEBUG must be one of" in result.stderr


def test_database_and_redis_urls_switch_to_postgres_and_redis():
    code = ("from django.conf import settings; print(settings.DATABASES['default']['ENGINE'], "
            "settings.CELERY_BROKER_URL, settings.CACHES['default']['BACKEND'])")
    result = manage("shell", "-c", code, env={"DATABASE_URL": "postgres://u@db:5432/oms",
                                              "REDIS_URL": "redis://cache:6379/0"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-3:] == ["django.db.backends.postgresql", "redis://cache:6379/0",
                                          "django.core.cache.backends.redis.RedisCache"]
