"""Waking a store's inbox drain after deliveries were stored: a debounced signal, not a task per delivery."""

from __future__ import annotations

from django.core.cache import cache

from oms.effects import task_after_commit

PROCESS_TASK = "connectors.tasks.process_inbox_task"
# Deliveries to one store within this many seconds share their drain tasks.
WAKE_WINDOW_SECONDS = 1


def inbox_wake(store_id: int) -> None:
    """Make sure a drain of the store's inbox starts after the rows stored so far (committed before this call).

    The first wake of a window queues a drain at once. A wake that loses the window may have stored its row
    after that drain already looked at the inbox, so the first loser of a window queues one more drain for
    the window's end, and later losers are covered by it: a row committed at time t (before its wake) is
    seen by a drain that starts after t. So per store and window: at most two tasks, whatever the traffic.

    Why nothing is lost for good even so: the drain loops until the inbox has no due row; a key the cache
    (Redis) drops early only lets the next wake queue again; with Redis down the add raises after the row is
    stored (the platform gets a 5xx and redelivers, counted as a repeat), as the task queue would have; and
    should a task message itself be lost, the sweep_inbox_task beat re-queues every store whose pending rows
    are overdue (30 s), as rule 8 of GUIDE.md wants.
    """
    if cache.add(f"inbox-wake:{store_id}", 1, timeout=WAKE_WINDOW_SECONDS):
        task_after_commit(PROCESS_TASK, store_id=store_id)
    elif cache.add(f"inbox-wake-trailing:{store_id}", 1, timeout=WAKE_WINDOW_SECONDS):
        # Starts when this key expires, so it follows every wake that saw the key (they ran before that).
        task_after_commit(PROCESS_TASK, countdown=WAKE_WINDOW_SECONDS, store_id=store_id)
