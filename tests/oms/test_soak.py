"""The trial stays up: whole broker files, no pidbox on the file-system broker, and `make soak` with two worker kills."""

import builtins
import io
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from queue import Empty

import pytest
from kombu import Connection

from oms.broker import Transport

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def channel(tmp_path):
    folders = {name: tmp_path / name for name in ("out", "processed", "control")}
    for folder in folders.values():
        folder.mkdir()
    options = {"data_folder_in": str(folders["out"]), "data_folder_out": str(folders["out"]),
               "processed_folder": str(folders["processed"]), "control_folder": str(folders["control"])}
    with Connection("filesystem://", transport=Transport, transport_options=options) as connection:
        yield connection.default_channel


def pause_inside_writes(monkeypatch, folder: Path, reader):
    """Call ``reader`` while a file in ``folder`` is open for writing and still empty: the moment a concurrent
    process (the web publishing, the worker consuming) could look at it. Returns what the reader saw."""
    seen = []
    real_open = builtins.open

    class Paused:
        def __init__(self, f):
            self.f = f

        def write(self, data):
            if not seen:
                try:
                    seen.append(reader())
                except Exception as exc:  # noqa: BLE001 - the point is to see what a reader would hit
                    seen.append(exc)
            return self.f.write(data)

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return self.f.__exit__(*exc)

    def patched(file, mode="r", *args, **kwargs):
        f = real_open(file, mode, *args, **kwargs)
        if "w" in mode and Path(file).parent == folder:
            return Paused(f)
        return f

    monkeypatch.setattr(builtins, "open", patched)
    monkeypatch.setattr(io, "open", patched)  # pathlib's Path.open goes through io.open
    return seen


def test_consumer_never_takes_a_message_file_before_its_bytes_are_in(channel, monkeypatch, tmp_path):
    # kombu's own transport creates the file empty and writes it after: the worker read b"" here and died with
    # "Unrecoverable error: JSONDecodeError", and the message was gone.
    seen = pause_inside_writes(monkeypatch, tmp_path / "out", lambda: channel._get("celery"))
    channel._put("celery", {"body": "task"})
    monkeypatch.undo()

    assert len(seen) == 1 and isinstance(seen[0], Empty), seen  # nothing yet, not a JSONDecodeError
    assert channel._get("celery") == {"body": "task"}
    assert channel._size("celery") == 0
    assert [p.name for p in (tmp_path / "out").iterdir()] == []  # no part-file left behind


def read_within(channel, exchange: str, seconds: float = 3.0):
    """The exchange table as another reader gets it, or "blocked" when that reader waits on the writer's lock."""
    result = []
    reader = threading.Thread(target=lambda: result.append(channel.get_table(exchange)), daemon=True)
    reader.start()
    reader.join(seconds)
    return result[0] if result else "blocked"


def test_exchange_table_is_never_read_half_written(channel, monkeypatch, tmp_path):
    # Every process binds the exchange as it starts; one publishing while another creates the table must see no
    # table yet (kombu's own: an empty file, JSONDecodeError), and then the whole table.
    seen = pause_inside_writes(monkeypatch, tmp_path / "control", lambda: read_within(channel, "celery"))
    channel._queue_bind("celery", "celery", None, "celery")
    monkeypatch.undo()
    assert seen == [[]], seen

    seen = pause_inside_writes(monkeypatch, tmp_path / "control", lambda: read_within(channel, "celery"))
    channel._queue_bind("celery", "other", None, "other")
    monkeypatch.undo()
    assert [[q.queue for q in table] for table in seen] == [["celery"]], seen
    assert sorted(q.queue for q in channel.get_table("celery")) == ["celery", "other"]
    channel._delete("other", "celery", "other", None)
    assert [q.queue for q in channel.get_table("celery")] == ["celery"]


def test_trial_broker_settings_keep_files_under_var_and_have_no_remote_control(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL", "REDIS_URL",
                                                                     "CELERY_"))}
    env["OMS_VAR_DIR"] = str(tmp_path / "var")
    code = ("from django.conf import settings as s; import json; print(json.dumps([s.CELERY_BROKER_URL, "
            "s.CELERY_BROKER_TRANSPORT, s.CELERY_BROKER_TRANSPORT_OPTIONS['control_folder'], "
            "s.CELERY_WORKER_ENABLE_REMOTE_CONTROL]))")
    result = subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [
        "filesystem://", "oms.broker:Transport", str(tmp_path / "var" / "celery-broker" / "control"), False]
    assert (tmp_path / "var" / "celery-broker" / "control").is_dir()
    assert not (ROOT / "control").exists()  # kombu's default folder in the working directory


@pytest.mark.slow
def test_soak_worker_killed_twice_loses_nothing():
    """The `make soak` script, short: the stack under load, its worker SIGKILLed twice by us."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL"))}
    result = subprocess.run([sys.executable, "scripts/soak.py", "--duration", "60", "--demo-orders", "40"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=420)
    figures = json.loads(result.stdout.strip().splitlines()[-1])

    assert figures["worker_restarts"] == 2, figures
    assert figures["worker_exits_seen"] == 2 and figures["other_exits_seen"] == 0, figures
    assert figures["unrecoverable_errors"] == 0, figures
    assert figures["errors"] == 0 and figures["requests"] > 100, figures
    assert figures["orders_created"] > 0 and figures["orders_lost"] == 0, figures
    assert figures["orders_processed"] == figures["orders_created"], figures
    assert figures["health_at_end"] == 200, figures
    assert figures["ok"] is True and result.returncode == 0, figures
