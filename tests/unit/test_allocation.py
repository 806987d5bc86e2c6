"""Rules of allocation by largest remainder: the parts sum exactly, and fairly."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from market.domain.allocation import allocate
from market.domain.errors import InvalidAllocationError

totals = st.integers(min_value=0, max_value=10**12)
weight = st.one_of(
    st.integers(min_value=0, max_value=10**6),
    st.decimals(min_value=0, max_value=10**6, places=3, allow_nan=False, allow_infinity=False),
)
weight_lists = st.lists(weight, min_size=1, max_size=20).filter(lambda ws: any(ws))


@pytest.mark.parametrize(
    "total, weights, parts",
    [
        (100, [1, 1, 1], [34, 33, 33]),
        (2, [1, 1, 1], [1, 1, 0]),
        (10, [1, 2], [3, 7]),
        (10, [Decimal("0.5"), Decimal("0.25"), Decimal("0.25")], [5, 3, 2]),
        (100, [60, 25, 15], [60, 25, 15]),
        (1001, [60, 25, 15], [601, 250, 150]),
        (100, [0, 1], [0, 100]),
        (1, [0, 1, 1], [0, 1, 0]),
        (0, [1, 2], [0, 0]),
        (7, [Decimal("1E+2"), 100], [4, 3]),
    ],
)
def test_known_splits(total, weights, parts):
    assert allocate(total, weights) == parts


@given(totals, weight_lists)
def test_the_parts_always_sum_exactly_to_the_total(total, weights):
    assert sum(allocate(total, weights)) == total


@given(totals, weight_lists)
def test_each_part_is_within_one_unit_of_its_exact_share(total, weights):
    weight_sum = sum(map(Fraction, weights))

    for part, w in zip(allocate(total, weights), weights):
        assert abs(part - total * Fraction(w) / weight_sum) < 1


@given(totals, weight_lists)
def test_a_zero_weight_gets_nothing_and_no_part_is_negative(total, weights):
    for part, w in zip(allocate(total, weights), weights):
        assert part >= 0
        if w == 0:
            assert part == 0


@given(totals, weight_lists)
def test_the_same_split_is_made_every_time(total, weights):
    assert allocate(total, weights) == allocate(total, list(weights))


@given(totals, weight_lists, st.integers(min_value=1, max_value=1000))
def test_scaling_every_weight_alike_changes_nothing(total, weights, factor):
    assert allocate(total, [w * factor for w in weights]) == allocate(total, weights)


@given(st.integers(min_value=0, max_value=10**12), st.integers(min_value=1, max_value=50))
def test_equal_weights_differ_by_at_most_one_unit_with_the_extra_units_first(total, count):
    parts = allocate(total, [1] * count)

    assert parts == sorted(parts, reverse=True)
    assert max(parts) - min(parts) <= 1


@pytest.mark.parametrize("weights", [[], [0], [0, 0, Decimal("0.000")]])
def test_weights_that_are_all_zero_cannot_be_allocated_by(weights):
    with pytest.raises(InvalidAllocationError):
        allocate(100, weights)


@pytest.mark.parametrize(
    "weights",
    [[1, -1], [Decimal("-0.01"), 2], [Decimal("NaN")], [Decimal("Infinity"), 1], [1.5, 1],
     [True, 1], ["1", 1]],
)
def test_negative_non_finite_or_inexact_weights_are_refused(weights):
    with pytest.raises(InvalidAllocationError):
        allocate(100, weights)


@pytest.mark.parametrize("total", [-1, 1.0, True, Decimal("100")])
def test_the_total_must_be_whole_minor_units_of_at_least_zero(total):
    with pytest.raises(InvalidAllocationError):
        allocate(total, [1, 1])


@given(totals, weight_lists)
def test_a_larger_weight_never_gets_a_smaller_part(total, weights):
    assume(len(weights) >= 2)
    parts = allocate(total, weights)

    for i in range(len(weights)):
        for j in range(len(weights)):
            if weights[i] > weights[j]:
                assert parts[i] >= parts[j]
