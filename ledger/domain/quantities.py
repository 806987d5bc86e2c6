"""Quantities of credits: whole tonnes within bounds."""

from __future__ import annotations

from typing import Any

from ledger.domain.errors import InvalidQuantityError

# No real issuance comes near this (the world emits ~40 Gt CO2e a year); it keeps typos and
# overflow attacks out of the serial counter.
MAX_QUANTITY = 10_000_000_000


def check_quantity(quantity: Any) -> int:
    """Returns ``quantity`` as whole tonnes, or raises InvalidQuantityError."""
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        raise InvalidQuantityError(f"invalid quantity {quantity!r}: whole tonnes expected")
    if not 1 <= quantity <= MAX_QUANTITY:
        raise InvalidQuantityError(
            f"invalid quantity {quantity}: from 1 to {MAX_QUANTITY:,} tonnes"
        )
    return quantity
