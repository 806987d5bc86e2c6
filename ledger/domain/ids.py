"""Deterministic aggregate ids: the same name always maps to the same id.

Saving a new aggregate whose id already exists fails in the event store, so namespaced ids
guard against doing a thing twice (registering a project, using an idempotency key).
"""

from __future__ import annotations

import secrets
from functools import lru_cache
from uuid import UUID, uuid5

KAPOK_NAMESPACE = UUID("6f1c2a52-8f0e-4a4b-9d7e-0c2b6a7e4b11")


# Remembered: every command names the same few aggregates (its listing, accounts, journal)
# again and again, and uuid5 hashes each time.
@lru_cache(maxsize=65_536)
def named_id(kind: str, name: str) -> UUID:
    return uuid5(KAPOK_NAMESPACE, f"{kind}:{name}")


def public_id(prefix: str) -> str:
    """A short, unguessable public id such as ``KAP-RET-7F3K9Q2M4XBD``."""
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U
    number = secrets.randbits(60)  # 12 characters of 5 bits, drawn at once
    return f"{prefix}-" + "".join(alphabet[(number >> shift) & 31] for shift in range(0, 60, 5))
