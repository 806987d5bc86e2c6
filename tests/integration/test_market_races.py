"""Racing buyers on one PostgreSQL store: twelve marketplaces, one listing of 100 t. Optimistic
concurrency must never reserve a tonne twice, nor more tonnes than are on offer."""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta

import pytest

from ledger.demo import INVENTORY
from ledger.domain.errors import ConcurrencyError
from ledger.audit.invariants import validate
from ledger.read.replay import replay
from market.application import Marketplace
from market.domain.listings import NotEnoughAvailableError
from market.domain.orders import EXPIRED, FULFILLED, RESERVED
from tests.integration.market_scenario import (
    HELD,
    PROJECT,
    START,
    VINTAGE,
    Clock,
    assert_sound,
    journal_entries,
    seed_market,
    serial_numbers,
)

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

WRITERS = 12
ON_OFFER = 100
PAYERS = 4
MAX_TRIES = 200  # per buyer: a correct listing of 100 t is full long before


@dataclass
class Outcome:
    """What one racing buyer did: the orders it placed and how often it was turned away."""

    orders: list[tuple[str, int]] = field(default_factory=list)  # order id, tonnes
    refusals: int = 0
    conflicts: int = 0


@dataclass
class Race:
    """The starting line, the finish, and the listing's counters as a watcher saw them."""

    # Generous: the buyers build their marketplaces one by one, slowly on a loaded machine.
    start: threading.Barrier = field(default_factory=lambda: threading.Barrier(WRITERS, timeout=120))
    over: threading.Event = field(default_factory=threading.Event)
    seen: list[tuple[int, int, int, int]] = field(default_factory=list)


def listed_serials(app: Marketplace) -> set[int]:
    """The serial numbers of the listed project vintage left in the inventory."""
    return serial_numbers(block for block in app.ledger.get_account(INVENTORY).blocks
                          if (block.project, block.vintage) == (PROJECT, VINTAGE))


def marketplace(url: str, clock: Clock, startup: threading.Lock) -> Marketplace:
    # Marketplaces are built one at a time: starting them at the same moment is a race of its
    # own (the schema), which the ledger's concurrency tests cover; here the orders race.
    with startup:
        # Two pooled connections each (a buyer uses one at a time): fourteen marketplaces
        # with the default five would take most of the server's 100 connections.
        return Marketplace(database=url, clock=clock, env={"POSTGRES_POOL_SIZE": "2"})


def buy(url: str, listing_id: str, writer: int, clock: Clock, startup, race: Race) -> Outcome:
    """Places orders of 1-30 t until the listing has nothing left (or, should the market
    oversell, for at most MAX_TRIES orders). Only the market's refusals are caught: anything
    else fails the test."""
    chance, outcome = random.Random(writer), Outcome()
    app = marketplace(url, clock, startup)
    try:
        race.start.wait()
        for _ in range(MAX_TRIES):
            if race.over.is_set():
                break
            tonnes = chance.randint(1, 30)
            try:
                result = app.place_order(listing_id, tonnes, f"Buyer {writer}", f"buyer-{writer}")
                outcome.orders.append((result["order_id"], tonnes))
            except NotEnoughAvailableError:
                outcome.refusals += 1
                if app.get_listing(listing_id).available <= 0:
                    break
            except ConcurrencyError:  # nothing was applied: try again
                outcome.conflicts += 1
        return outcome
    finally:
        app.close()


def watch(url: str, listing_id: str, clock: Clock, startup, race: Race) -> None:
    app = marketplace(url, clock, startup)
    try:
        while not race.over.is_set():
            listing = app.get_listing(listing_id)
            race.seen.append((listing.on_offer, listing.reserved, listing.sold,
                              listing.available))
    finally:
        app.close()


def settle(url: str, clock: Clock, startup, order_ids: list[str], pay: bool) -> None:
    app = marketplace(url, clock, startup)
    try:
        for order_id in order_ids:
            if pay:
                assert app.pay_offline(order_id) == "fulfilled"
            else:
                assert app.expire_order(order_id) is True
    finally:
        app.close()


def test_racing_buyers_never_reserve_a_tonne_twice_nor_more_than_is_on_offer(postgres_url):
    clock, startup = Clock(), threading.Lock()
    setup = Marketplace(database=postgres_url, clock=clock)
    try:
        listing_id = seed_market(setup, on_offer=ON_OFFER, minimum_quantity=1)
        inventory_before = listed_serials(setup)

        # Twelve buyers, each with its own marketplace, order at once until nothing is left,
        # while a watcher reads the listing's counters.
        race = Race()
        with ThreadPoolExecutor(WRITERS + 1) as pool:
            watcher = pool.submit(watch, postgres_url, listing_id, clock, startup, race)
            try:
                racers = [pool.submit(buy, postgres_url, listing_id, writer, clock, startup,
                                      race) for writer in range(WRITERS)]
                outcomes = [racer.result(timeout=240) for racer in racers]
            finally:
                race.over.set()
            watcher.result(timeout=10)
        orders = [order for outcome in outcomes for order in outcome.orders]

        # Never more reserved than on offer, at any moment the watcher looked; in the end
        # exactly the 100 t, spread over the orders that were accepted.
        assert race.seen, "the watcher never read the listing"
        overbooked = [(on_offer, reserved, sold, available)
                      for on_offer, reserved, sold, available in race.seen
                      if reserved + sold > ON_OFFER or available < 0
                      or reserved + sold + available != on_offer]
        assert overbooked == []
        assert sum(tonnes for _, tonnes in orders) == ON_OFFER
        listing = setup.get_listing(listing_id)
        assert (listing.on_offer, listing.reserved, listing.sold, listing.available) == (
            ON_OFFER, ON_OFFER, 0, 0)

        # Each order's escrow holds exactly its tonnes; no serial is in two escrows, and
        # escrows and inventory together hold what the inventory held before.
        escrowed: list[set[int]] = []
        for order_id, tonnes in orders:
            order = setup.get_order(order_id)
            escrow = setup.ledger.get_account(order.escrow_name)
            assert (order.state, order.tonnes, escrow.balance) == (RESERVED, tonnes, tonnes)
            assert order.serials == [block.serial for block in escrow.blocks]
            escrowed.append(serial_numbers(escrow.blocks))
        everything_escrowed = set().union(*escrowed)
        assert len(everything_escrowed) == sum(map(len, escrowed)) == ON_OFFER
        inventory_after = listed_serials(setup)
        assert everything_escrowed.isdisjoint(inventory_after)
        assert everything_escrowed | inventory_after == inventory_before
        assert validate(replay(setup)) == []

        # Then half the orders are paid while the others' reservations run out and expire,
        # on their own marketplaces and at the same time.
        ids = sorted(order_id for order_id, _ in orders)
        paid, unpaid = ids[::2], ids[1::2]
        later = Clock(START + timedelta(minutes=31))
        with ThreadPoolExecutor(PAYERS + 1) as pool:
            settling = [pool.submit(settle, postgres_url, clock, startup, paid[n::PAYERS], True)
                        for n in range(PAYERS)]
            settling.append(pool.submit(settle, postgres_url, later, startup, unpaid, False))
            for future in settling:
                future.result(timeout=60)

        # Every order ends fulfilled or expired; the listing counts what was sold.
        tonnes_of = dict(orders)
        states = {order_id: setup.get_order(order_id).state for order_id in ids}
        assert {order_id for order_id, state in states.items() if state == FULFILLED} == set(paid)
        assert {order_id for order_id, state in states.items() if state == EXPIRED} == set(unpaid)
        sold = sum(tonnes_of[order_id] for order_id in paid)
        listing = setup.get_listing(listing_id)
        assert (listing.reserved, listing.sold, listing.available) == (0, sold, ON_OFFER - sold)
        delivered = sum(setup.ledger.get_account(f"buyer-{writer}").balance
                        for writer, outcome in enumerate(outcomes) if outcome.orders)
        assert delivered == sold
        assert len(listed_serials(setup)) == HELD - sold
        assert len(journal_entries(setup)) == len(paid)
        assert_sound(setup)
    finally:
        setup.close()
