"""The reservation caps and an organisation's holds: what fits, what is refused and why."""

from __future__ import annotations

import pytest

from ledger.settings import KAPOK_RESERVATION_MINUTES, SettingError
from market.domain.reservations import (DEFAULT_PER_LISTING, DEFAULT_PER_ORGANISATION,
                                 InvalidReservationCapError, ReservationCapError,
                                 ReservationCaps, ReservationHolds, ReservationPolicy,
                                 validate_holds)

CAPS = ReservationCaps(per_listing=10, per_organisation=15)


def holds(*orders: tuple[str, str, int]) -> ReservationHolds:
    held = ReservationHolds("acme")
    for order_id, listing_id, tonnes in orders:
        held.hold(order_id, listing_id, tonnes)
    return held


def test_tonnes_up_to_both_caps_fit():
    held = holds(("O1", "L1", 6), ("O2", "L2", 5))
    held.check_room("L1", "P 2022", 4, CAPS)
    assert (held.on_listing("L1"), held.total) == (6, 11)


def test_cannot_hold_more_than_the_cap_on_one_listing():
    with pytest.raises(ReservationCapError) as refused:
        holds(("O1", "L1", 6)).check_room("L1", "P 2022", 5, CAPS)
    assert str(refused.value) == (
        "acme may hold at most 10 t reserved on listing P 2022 and already holds 6 t there: "
        "5 t would exceed that; order at most 4 t, or pay for or cancel a reserved order first")


def test_cannot_hold_more_than_the_total_cap_across_listings():
    with pytest.raises(ReservationCapError, match="at most 15 t reserved in all and already "
                                                  "holds 15 t: no more can be reserved now"):
        holds(("O1", "L1", 10), ("O2", "L2", 5)).check_room("L3", "P 2023", 1, CAPS)


def test_letting_go_frees_the_room_and_an_unknown_order_changes_nothing():
    held = holds(("O1", "L1", 10))
    assert held.let_go("O1") is True
    assert held.let_go("O1") is False and held.let_go("NEVER-HELD") is False
    held.check_room("L1", "P 2022", 10, CAPS)
    assert held.total == 0


def test_holding_the_same_order_twice_counts_it_once():
    held = holds(("O1", "L1", 4), ("O1", "L1", 4))
    assert held.total == 4


def test_the_policy_gives_the_defaults_until_operators_set_caps():
    policy = ReservationPolicy()
    assert policy.caps_for("L1") == ReservationCaps(DEFAULT_PER_LISTING,
                                                    DEFAULT_PER_ORGANISATION)
    policy.set_caps(20, 30)
    policy.set_listing_cap("L1", 5)
    assert policy.caps_for("L1") == ReservationCaps(5, 30)
    assert policy.caps_for("L2") == policy.defaults == ReservationCaps(20, 30)
    policy.set_listing_cap("L1", None)
    assert policy.caps_for("L1") == ReservationCaps(20, 30)


def test_setting_the_same_caps_again_records_nothing():
    policy = ReservationPolicy()
    policy.set_caps(20, 30)
    policy.set_listing_cap("L1", None)
    version = policy.version
    policy.set_caps(20, 30)
    assert policy.version == version


@pytest.mark.parametrize("cap", [0, -1, 2.5, True, "10", None, 10**13])
def test_a_cap_is_whole_tonnes_from_one(cap):
    with pytest.raises(InvalidReservationCapError):
        ReservationPolicy().set_caps(cap, 10)
    if cap is not None:
        with pytest.raises(InvalidReservationCapError):
            ReservationPolicy().set_listing_cap("L1", cap)


@pytest.mark.parametrize("value, minutes", [(None, 30), ("", 30), ("15", 15), (" 90 ", 90),
                                            ("1440", 1440)])
def test_the_reservation_lifetime_comes_from_the_environment(value, minutes):
    environ = {} if value is None else {"KAPOK_RESERVATION_MINUTES": value}
    assert KAPOK_RESERVATION_MINUTES.read(environ) == minutes


@pytest.mark.parametrize("value", ["0", "1441", "-5", "2.5", "thirty", "³"])
def test_a_reservation_lifetime_that_is_not_whole_minutes_in_a_day_is_refused(value):
    with pytest.raises(SettingError, match="KAPOK_RESERVATION_MINUTES"):
        KAPOK_RESERVATION_MINUTES.read({"KAPOK_RESERVATION_MINUTES": value})


def test_holds_agree_with_the_reserved_orders_or_each_difference_is_named():
    held = holds(("O1", "L1", 4), ("O2", "L1", 3))
    assert validate_holds(held, {"O1": 4, "O2": 3}) == []
    assert validate_holds(held, {"O1": 5, "O3": 2}) == [
        "acme: order O1 holds 5 t reserved but the holds count 4 t",
        "acme: order O3 holds 2 t reserved but the holds count 0 t",
        "acme: the holds count order O2, which holds no reservation"]
