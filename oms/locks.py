"""Row-lock helpers: every lock in the project is taken through these, always in ascending pk order."""

from collections.abc import Iterable

from django.db import models, transaction


def lock_one(model: type[models.Model], pk) -> models.Model:
    """Lock one row for the rest of the current transaction and return it fresh from the database."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("lock_one must be called inside transaction.atomic()")
    return model._default_manager.select_for_update().get(pk=pk)


def lock_many(model: type[models.Model], pks: Iterable) -> list[models.Model]:
    """Lock several rows in ascending pk order (the fixed order that keeps concurrent lockers deadlock-free)."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("lock_many must be called inside transaction.atomic()")
    ordered = sorted(set(pks))
    return list(model._default_manager.select_for_update().filter(pk__in=ordered).order_by("pk"))
