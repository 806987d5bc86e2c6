"""Caps on what one organisation may hold reserved, on SQLite and PostgreSQL: refused beyond
them with a message saying why, counted again as orders are paid, cancelled or expire, applied
at once by every process, never exceeded by orders placed at the same moment; and operators
releasing a reservation."""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from ledger.domain.accounts import INVENTORY as INVENTORY_KIND
from ledger.demo import INVENTORY
from ledger.domain.errors import ConcurrencyError
from market.application import Marketplace
from market.domain.listings import NotEnoughAvailableError
from market.domain.orders import CANCELLED, FULFILLED, IllegalTransitionError
from market.domain.reservations import (DEFAULT_PER_LISTING, DEFAULT_PER_ORGANISATION,
                                 InvalidReservationCapError, ReservationCapError)
from tests.integration.market_scenario import (
    BUYER,
    OTHER_BUYER,
    PRICE,
    PROJECT,
    VINTAGE,
    Clock,
    Market,
    assert_sound,
    seed_market,
)

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@pytest.fixture
def market(database_url):
    clock = Clock()
    app = Marketplace(database=database_url, clock=clock)
    try:
        yield Market(app, clock, seed_market(app, minimum_quantity=1))
    finally:
        app.close()


def second_listing(app: Marketplace, inventory: str = INVENTORY) -> str:
    """Another listing of the project vintage, from the same inventory or from a new one."""
    if inventory != INVENTORY:
        app.ledger.open_account(inventory, INVENTORY_KIND, "Ecosphere+")
        app.ledger.issue(PROJECT, VINTAGE, 600, to_account=inventory)
    return app.create_listing(PROJECT, VINTAGE, inventory, PRICE, "USD", 500)["listing_id"]


def test_until_operators_set_caps_the_defaults_apply(market):
    caps = market.app.reservation_caps(market.listing_id)
    assert (caps.per_listing, caps.per_organisation) == (DEFAULT_PER_LISTING,
                                                         DEFAULT_PER_ORGANISATION)


def test_an_order_over_the_listing_cap_is_refused_saying_the_cap_and_what_is_held(market):
    market.app.set_reservation_caps(per_listing=10, per_organisation=15)
    market.order(6)
    before = market.counters()

    with pytest.raises(ReservationCapError) as refused:
        market.order(5)

    message = str(refused.value)
    assert "at most 10 t reserved on listing KAP-AF-01 2022" in message
    assert "already holds 6 t" in message and "order at most 4 t" in message
    assert not _UUID.search(message)
    assert market.counters() == before  # nothing was reserved
    market.order(4)  # what fits under the cap still goes through
    market.order(10, buyer=OTHER_BUYER)  # and another organisation has its own room
    assert_sound(market.app)


def test_the_total_cap_counts_the_organisations_reservations_on_every_listing(market):
    other = second_listing(market.app)
    market.app.set_reservation_caps(per_listing=10, per_organisation=15)
    market.order(10)

    with pytest.raises(ReservationCapError, match="at most 15 t reserved in all and already "
                                                  "holds 10 t: 6 t would exceed"):
        market.app.place_order(other, 6, BUYER.title(), BUYER)
    market.app.place_order(other, 5, BUYER.title(), BUYER)
    assert market.app.reserved_by(BUYER.title()).total == 15


def test_a_listings_own_cap_replaces_the_default_for_that_listing_only(market):
    other = second_listing(market.app)
    market.app.set_listing_reservation_cap(other, 3)
    with pytest.raises(ReservationCapError, match="at most 3 t reserved on listing"):
        market.app.place_order(other, 4, BUYER.title(), BUYER)
    market.order(4)  # the first listing keeps the default
    market.app.set_listing_reservation_cap(other, None)
    market.app.place_order(other, 4, BUYER.title(), BUYER)


@pytest.mark.parametrize("per_listing, per_organisation", [(0, 5), (5, -1), (2.5, 5),
                                                            (True, 5), (5, "10")])
def test_caps_are_whole_tonnes_from_one(market, per_listing, per_organisation):
    with pytest.raises(InvalidReservationCapError):
        market.app.set_reservation_caps(per_listing, per_organisation)


@pytest.mark.parametrize("end", ["pay", "cancel", "expire", "release"])
def test_a_reservation_stops_counting_once_paid_cancelled_expired_or_released(market, end):
    market.app.set_reservation_caps(per_listing=10, per_organisation=10)
    order_id = market.order(10)
    with pytest.raises(ReservationCapError):
        market.order(1)

    if end == "pay":
        assert market.app.pay_offline(order_id) == "fulfilled"
    elif end == "cancel":
        market.app.cancel_order(order_id, "changed our mind")
    elif end == "expire":
        market.clock.advance(31)
        assert market.app.expire_order(order_id)
    else:
        market.app.release_reservation(order_id, "released by an operator")

    assert market.app.reserved_by(BUYER.title()).total == 0
    market.order(10)
    assert_sound(market.app)


def test_an_operator_releasing_a_reservation_returns_its_tonnes_to_the_listing(market):
    order_id = market.order(40)
    escrow = market.app.get_order(order_id).escrow_name
    on_offer, _, _, available = market.counters()

    summary = market.app.release_reservation(order_id, "held without paying")

    # The order is cancelled, the escrow emptied into the inventory, the listing whole again.
    assert summary["state"] == CANCELLED and summary["serials"] == []
    assert market.app.ledger.get_account(escrow).blocks == []
    assert market.counters() == (on_offer, 0, 0, available + 40)
    assert market.app.get_order(order_id).note == "held without paying"
    assert_sound(market.app)


def test_only_a_reserved_order_can_be_released(market):
    order_id = market.order(3)
    market.app.pay_offline(order_id)
    with pytest.raises(IllegalTransitionError, match="is fulfilled: it holds no reservation"):
        market.app.release_reservation(order_id, "too late")
    assert market.app.get_order(order_id).state == FULFILLED


def test_caps_set_by_an_operator_apply_at_once_in_another_process(database_url):
    clock = Clock()
    web = Marketplace(database=database_url, clock=clock)
    console = Marketplace(database=database_url, clock=clock)
    try:
        listing_id = seed_market(web, minimum_quantity=1)
        web.place_order(listing_id, 8, BUYER.title(), BUYER)  # this process knows the caps

        console.set_reservation_caps(per_listing=10, per_organisation=12)

        with pytest.raises(ReservationCapError, match="at most 10 t reserved on listing"):
            web.place_order(listing_id, 3, BUYER.title(), BUYER)
        assert web.reservation_caps().per_organisation == 12
    finally:
        web.close()
        console.close()


CAP, WRITERS, ORDERS_EACH = 12, 6, 4


def test_orders_placed_at_once_by_one_organisation_never_hold_more_than_its_cap(database_url):
    clock = Clock()
    setup = Marketplace(database=database_url, clock=clock)
    try:
        listings = [seed_market(setup, minimum_quantity=1),
                    second_listing(setup, inventory="second-inventory")]
        setup.set_reservation_caps(per_listing=1_000, per_organisation=CAP)
    finally:
        setup.close()
    start = threading.Barrier(WRITERS)
    startup = threading.Lock()

    def buy(writer: int) -> list[int]:
        # Each writer is a web worker of its own; writers alternate between two listings of
        # two inventories, so only the organisation's holds are common to all their orders.
        with startup:
            app = Marketplace(database=database_url, clock=clock,
                              env={"POSTGRES_POOL_SIZE": "2"})
        placed = []
        try:
            start.wait()
            for number in range(ORDERS_EACH):
                try:
                    app.place_order(listings[(writer + number) % 2], 2, BUYER.title(), BUYER)
                    placed.append(2)
                except (ReservationCapError, ConcurrencyError):
                    pass
        finally:
            app.close()
        return placed

    with ThreadPoolExecutor(WRITERS) as pool:
        placed = [tonnes for result in pool.map(buy, range(WRITERS)) for tonnes in result]

    check = Marketplace(database=database_url, clock=clock)
    try:
        reserved = sum(check.get_listing(listing).reserved for listing in listings)
        assert sum(placed) == reserved == check.reserved_by(BUYER.title()).total == CAP
        assert_sound(check)
    finally:
        check.close()


def test_the_cap_leaves_the_listings_own_refusals_as_they_were(market):
    market.app.set_reservation_caps(per_listing=10**6, per_organisation=10**6)
    with pytest.raises(NotEnoughAvailableError):
        market.order(501)
