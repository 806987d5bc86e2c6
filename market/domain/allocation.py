"""Sharing a whole number of minor units out by weights so that the parts sum exactly."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Sequence

from market.domain.errors import InvalidAllocationError


def allocate(total_minor: int, weights: Sequence[Decimal | int]) -> list[int]:
    """``total_minor`` split in proportion to ``weights`` by the largest-remainder method.

    Each part is the floor of its exact share; the units left over go one each to the parts
    with the largest remainders, ties to the earlier part, so the result is deterministic,
    sums exactly to the total and every part is within one unit of its exact share. A zero
    weight gets 0. Raises InvalidAllocationError for a negative or non-int total, or for
    weights that are negative, not finite, not int or Decimal, or all zero.
    """
    if not isinstance(total_minor, int) or isinstance(total_minor, bool) or total_minor < 0:
        raise InvalidAllocationError(
            f"the total to allocate must be a whole number of minor units >= 0: {total_minor!r}"
        )
    exact_weights = [_exact_weight(weight) for weight in weights]
    weight_sum = sum(exact_weights)
    if weight_sum == 0:
        raise InvalidAllocationError(
            f"cannot allocate {total_minor} by weights that are all zero: {list(weights)}"
        )
    # Fractions keep every share exact, whatever the weights' decimal places.
    shares = [total_minor * weight / weight_sum for weight in exact_weights]
    parts = [share.numerator // share.denominator for share in shares]
    leftover = total_minor - sum(parts)
    by_remainder = sorted(range(len(shares)), key=lambda i: (parts[i] - shares[i], i))
    for index in by_remainder[:leftover]:
        parts[index] += 1
    return parts


def _exact_weight(weight: Decimal | int) -> Fraction:
    if isinstance(weight, bool) or not isinstance(weight, (int, Decimal)):
        raise InvalidAllocationError(
            f"weights are ints or Decimals, not {type(weight).__name__}: {weight!r}"
        )
    if isinstance(weight, Decimal) and not weight.is_finite():
        raise InvalidAllocationError(f"weights must be finite: {weight}")
    if weight < 0:
        raise InvalidAllocationError(f"weights may not be negative: {weight}")
    return Fraction(weight)
