"""The trial's file-system Celery transport: kombu's, with every file published whole (write aside, then rename)."""

import fcntl
import os
import uuid
from pathlib import Path
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import bytes_to_str, str_to_bytes
from kombu.utils.json import dumps, loads

# Why this exists (measured, see README "Trial robustness"): kombu's file-system transport creates a message
# file empty, then locks and writes it; its consumer neither locks nor waits, so it can take a file before the
# bytes are in, read b"" and raise JSONDecodeError, which the Celery worker treats as unrecoverable (and the
# message is gone). Three publishers against one consumer hit this 23 times in 18,000 messages. The same
# create-then-write race exists for the exchange tables in the control folder. Writing to a dot-file that the
# consumer ignores and renaming it into place makes a file appear complete or not at all (rename is atomic
# within one folder), with no change to the on-disk layout.


def _write_whole(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader sees the old file or the new one, never a partial one."""
    part = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
    try:
        with open(part, "wb") as f:
            f.write(data)
        os.replace(part, path)
    except OSError:
        part.unlink(missing_ok=True)
        raise


class Channel(filesystem.Channel):
    """Atomic message files and exchange tables; reading and the folder layout stay kombu's own."""

    def _put(self, queue, payload, **kwargs):
        # The name sorts by time like kombu's ("<ms>_<uuid>.<queue>.msg") so the consumer keeps FIFO order.
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        try:
            _write_whole(Path(self.data_folder_out) / name, str_to_bytes(dumps(payload)))
        except OSError as exc:
            raise ChannelError(f"Cannot add file {name!r} to directory") from exc

    def _table_update(self, exchange, change) -> None:
        """Read-modify-write one exchange table under a lock file, so concurrent binds never drop each other."""
        file = self._exchange_file(exchange)
        self.control_folder.mkdir(parents=True, exist_ok=True)
        try:
            with open(file.with_name(f".{file.name}.lock"), "a") as lock_file:
                fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX)
                try:
                    raw = file.read_bytes()
                except FileNotFoundError:
                    raw = b"[]"
                queues = [filesystem.exchange_queue_t(*q) for q in loads(bytes_to_str(raw) or "[]")]
                changed = change(queues)
                if changed is not None:
                    _write_whole(file, str_to_bytes(dumps(changed)))
        except OSError as exc:
            raise ChannelError(f"Cannot open {file}") from exc

    def _queue_bind(self, exchange, routing_key, pattern, queue):
        entry = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")
        self._table_update(exchange, lambda queues: None if entry in queues else [entry, *queues])

    def _delete(self, queue, exchange, routing_key, pattern, *args, **kwargs):
        # Skip kombu's own table rewrite (filesystem.Channel._delete); keep the virtual channel's bookkeeping.
        super(filesystem.Channel, self)._delete(queue, exchange, routing_key, pattern, *args, **kwargs)
        entry = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")
        self._table_update(exchange, lambda queues: [q for q in queues if q != entry] if entry in queues else None)


class Transport(filesystem.Transport):
    """kombu's file-system transport with the atomic channel above."""

    Channel = Channel
