"""Deterministic aggregate ids: the same name always maps to the same id.

Saving a new aggregate whose id already exists fails in the event store, so namespaced ids
guard against doing a thing twice (registering a project, using an idempotency key).
"""

from __future__ import annotations

from functools import lru_cache
from uuid import UUID, uuid5

KAPOK_NAMESPACE = UUID("6f1c2a52-8f0e-4a4b-9d7e-0c2b6a7e4b11")


# Remembered: every command names the same few aggregates (its listing, accounts, journal)
# again and again, and uuid5 hashes each time.
@lru_cache(maxsize=65_536)
def named_id(kind: str, name: str) -> UUID:
    return uuid5(KAPOK_NAMESPACE, f"{kind}:{name}")
