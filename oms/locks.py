"""Row-lock helpers: every row lock in the project is taken through these, always in ascending pk order."""

from collections.abc import Iterable

from django.db import models, transaction


def _require_transaction(helper: str) -> None:
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError(f"{helper} must be called inside transaction.atomic()")


def lock_one(model: type[models.Model], pk) -> models.Model:
    """Lock one row for the rest of the current transaction and return it fresh from the database."""
    _require_transaction("lock_one")
    return model._default_manager.select_for_update().get(pk=pk)


def lock_one_or_none(queryset: models.QuerySet) -> models.Model | None:
    """Lock the first row the queryset finds (or None) for the rest of the current transaction."""
    _require_transaction("lock_one_or_none")
    return queryset.select_for_update().order_by("pk").first()


def lock_many(model: type[models.Model], pks: Iterable) -> list[models.Model]:
    """Lock several rows in ascending pk order (the fixed order that keeps concurrent lockers deadlock-free)."""
    _require_transaction("lock_many")
    ordered = sorted(set(pks))
    return list(model._default_manager.select_for_update().filter(pk__in=ordered).order_by("pk"))


def lock_rows(queryset: models.QuerySet, *, skip_locked: bool = False, of: tuple[str, ...] = ()) -> models.QuerySet:
    """The queryset's rows locked in ascending pk order; ``skip_locked`` passes over rows another
    transaction holds (for work queues), ``of`` limits the lock to the named tables of a join."""
    _require_transaction("lock_rows")
    return queryset.select_for_update(skip_locked=skip_locked, of=of or ()).order_by("pk")
