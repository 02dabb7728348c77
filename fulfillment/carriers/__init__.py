"""Carrier adapters (waybills, tracking, cancel) and ``adapter_for``, the registry of carrier kinds."""

from __future__ import annotations

from importlib import import_module
from typing import Any

from fulfillment.carriers.base import CarrierAdapter

# Dotted paths, imported on use: formatting or the manual carrier need not load the HTTP client.
ADAPTERS = {
    "sf": "fulfillment.carriers.sf.SFAdapter",
    "manual": "fulfillment.carriers.manual.ManualAdapter",
}


def adapter_for(kind: str, config: dict[str, Any]) -> CarrierAdapter:
    """The adapter of carrier ``kind`` for one account's ``config`` (LookupError for an unknown kind)."""
    try:
        path = ADAPTERS[kind]
    except KeyError:
        raise LookupError(f"no carrier adapter for kind {kind!r}") from None
    module, _, name = path.rpartition(".")
    return getattr(import_module(module), name)(config)
