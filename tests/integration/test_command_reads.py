"""How commands read on PostgreSQL: a command's aggregates in one round trip (as correct as one
by one, with fewer queries), and commands on one hot listing taking turns across processes
instead of throwing work away. Two marketplaces over one store stand for two web workers."""

from __future__ import annotations

import contextlib
import threading
from decimal import Decimal
from uuid import UUID

import psycopg
import pytest
from psycopg.pq import TransactionStatus

from ledger.domain.accounts import account_id
from ledger.adapters.store import _lock_key
from ledger.adapters.batch_reads import events_after
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError, StoredEvent
from eventsourcing.persistence import OperationalError as StoreOperationalError

from ledger.demo import INVENTORY
from market.application import Marketplace
from market.domain.listings import NotEnoughAvailableError, PriceTier
from market.domain.orders import IllegalTransitionError
from tests.integration.market_scenario import BUYER, PROJECT, VINTAGE, assert_sound, seed_market

pytestmark = pytest.mark.postgres


@pytest.fixture
def workers(postgres_url):
    this, other = Marketplace(database=postgres_url), Marketplace(database=postgres_url)
    yield this, other
    this.close()
    other.close()


@contextlib.contextmanager
def counted_queries():
    """Counts the queries psycopg sends (one round trip each, unless pipelined), in this
    process."""
    counts = {"queries": 0}
    execute = psycopg.Cursor.execute

    def counting(self, *args, **kwargs):
        counts["queries"] += 1
        return execute(self, *args, **kwargs)

    psycopg.Cursor.execute = counting
    try:
        yield counts
    finally:
        psycopg.Cursor.execute = execute


def test_events_after_brings_only_newer_events_and_probes_the_rest(workers):
    this, _ = workers
    this.ledger.open_account("acme", owner=BUYER)
    this.ledger.open_account("globex", owner=BUYER)
    acme, globex = account_id("acme"), account_id("globex")
    missing = account_id("nobody")
    found = events_after(this.recorder, {acme: 0}, [globex, missing])
    assert [event.originator_version for event in found[acme]] == [1]
    assert [event.originator_version for event in found[globex]] == [1]  # exists: one event
    assert found[missing] == []
    assert events_after(this.recorder, {acme: 1}, [])[acme] == []


def test_a_command_sees_what_another_worker_saved_since_it_cached_the_aggregates(workers):
    this, other = workers
    listing = seed_market(other)
    held = other.ledger.get_account(INVENTORY).balance
    this.ledger.open_account("org-acme", owner=BUYER)
    this.place_order(listing, 2, BUYER, "org-acme")  # caches the listing and inventory
    # The other worker reserves from the same listing and inventory: this one's copies are
    # stale. Were they used as they are, every save would conflict (and the command fail).
    other.place_order(listing, 5, BUYER, "org-acme")
    this.pay_offline(this.place_order(listing, 3, BUYER, "org-acme")["order_id"])
    for worker in (this, other):
        assert (worker.get_listing(listing).reserved, worker.get_listing(listing).sold) == (7, 3)
        assert worker.ledger.get_account(INVENTORY).balance == held - 10
        assert worker.ledger.get_account("org-acme").balance == 3
    assert_sound(other)


def test_an_order_paid_by_another_worker_is_refused_even_if_this_one_saw_it_unpaid(workers):
    this, other = workers
    listing = seed_market(this)
    this.ledger.open_account("org-acme", owner=BUYER)
    order_id = this.place_order(listing, 2, BUYER, "org-acme")["order_id"]
    assert other.pay_offline_summary(order_id)["state"] == "fulfilled"
    # This worker last saw the order reserved; the payment reads it as it is now.
    seen = this.peek_order(order_id)
    assert seen.state == "reserved"
    with pytest.raises(IllegalTransitionError, match="is fulfilled"):
        this.pay_offline_summary(order_id, seen)
    assert this.ledger.get_account("org-acme").balance == 2  # paid once, delivered once
    assert_sound(this)


def test_placing_and_paying_an_order_reads_in_a_few_round_trips(workers):
    this, _ = workers
    listing = seed_market(this)
    this.ledger.open_account("org-acme", owner=BUYER)
    this.pay_offline(this.place_order(listing, 2, BUYER, "org-acme")["order_id"])  # warm
    with counted_queries() as placing:
        order = this.place_order(listing, 2, BUYER, "org-acme")
    with counted_queries() as paying:
        this.pay_offline(order["order_id"])
    # Queries, each one round trip. Placing: the turns on the listing and its inventory taken
    # by the one batch read, which opens their transaction, then the save, sent with the Sync
    # that commits it and ends the turns. Paying: the order (who may pay), then the same for
    # the listing and the proceeds journal. Read one aggregate at a time and saved as
    # eventsourcing saves, it was 10 and 22 statements, each a round trip.
    assert placing["queries"] <= 2, placing
    assert paying["queries"] <= 3, paying


def test_an_order_placed_by_another_worker_is_paid_in_as_few_round_trips(workers):
    this, other = workers
    listing = seed_market(this)
    this.ledger.open_account("org-acme", owner=BUYER)
    for worker in (this, other):  # each has the listing, accounts and journal in memory
        worker.pay_offline(worker.place_order(listing, 2, BUYER, "org-acme")["order_id"])
    order = other.place_order(listing, 2, BUYER, "org-acme")
    with counted_queries() as paying:
        this.pay_offline(order["order_id"])
    # The order (who may pay), then the batch read, which brings the order's escrow whole
    # although this worker has never seen it, and the save.
    assert paying["queries"] <= 3, paying
    assert this.ledger.get_account("org-acme").balance == 6
    assert_sound(this)


def test_the_containers_copied_shallowly_hold_only_values_that_never_change(workers):
    # copy_aggregate copies an aggregate's flat_containers shallowly: sound only while every
    # item in them is immutable (hashable, for the values these aggregates hold).
    this, _ = workers
    listing = seed_market(this)
    this.change_listing(listing, price_per_tonne=Decimal("25"),
                        tiers=[PriceTier(100, Decimal("20"))])
    this.ledger.open_account("org-acme", owner=BUYER)
    order = this.place_order(listing, 2, BUYER, "org-acme")
    this.pay_offline(this.place_order(listing, 3, BUYER, "org-acme")["order_id"])
    aggregates = [this.get_listing(listing), this.ledger.get_account(INVENTORY),
                  this.ledger.get_account("org-acme"), this.get_order(order["order_id"]),
                  this.proceeds("USD"), this._roster()]
    for aggregate in aggregates:
        items = []
        for name in type(aggregate).flat_containers:
            container = getattr(aggregate, name)
            items += list(container.values()) if isinstance(container, dict) else list(container)
        assert items, f"{type(aggregate).__name__}: nothing to check"
        for item in items:
            hash(item)  # raises for a list, a dict or a dataclass that is not frozen


def counting_conflicts(workers) -> list:
    """Each save the store refuses as stale (Store.run would back off and run it again)."""
    conflicts = []
    for worker in workers:
        def counting_save(*aggregates, _save=worker.store.save):
            try:
                return _save(*aggregates)
            except IntegrityError:
                conflicts.append(1)
                raise

        worker.store.save = counting_save
    return conflicts


def sell_concurrently(sellers: list[tuple[Marketplace, str]], orders: int) -> list:
    """Each (worker, listing) places and pays ``orders`` orders of 2 t in a thread of its own;
    the errors raised."""
    errors = []

    def sell(worker, listing):
        try:
            for _ in range(orders):
                worker.pay_offline(worker.place_order(listing, 2, BUYER, "org-acme")["order_id"])
        except Exception as error:  # reported by the caller
            errors.append(error)

    threads = [threading.Thread(target=sell, args=seller) for seller in sellers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_two_workers_selling_from_one_listing_take_turns_instead_of_conflicting(workers):
    listing = seed_market(workers[0], on_offer=200)
    workers[0].ledger.open_account("org-acme", owner=BUYER)
    conflicts = counting_conflicts(workers)
    assert sell_concurrently([(worker, listing) for worker in workers], 25) == []
    assert workers[1].get_listing(listing).sold == 2 * 25 * 2
    assert conflicts == []
    assert_sound(workers[1])


def test_listings_sharing_an_inventory_and_a_currency_take_turns_too(workers):
    # Two listings of one inventory: placing orders changes the inventory of both, settling
    # them the same USD proceeds journal.
    first = seed_market(workers[0], on_offer=100)
    second = workers[0].create_listing(PROJECT, VINTAGE, INVENTORY, Decimal("20"), "USD", 100,
                                       minimum_quantity=2)["listing_id"]
    workers[0].ledger.open_account("org-acme", owner=BUYER)
    conflicts = counting_conflicts(workers)
    assert sell_concurrently([(workers[0], first), (workers[1], second)], 25) == []
    assert [workers[1].get_listing(listing).sold for listing in (first, second)] == [50, 50]
    assert conflicts == []
    assert_sound(workers[1])


def open_turns(postgres_url) -> tuple[int, int]:
    """(advisory locks held, sessions idle in a transaction) in the store, from outside (other
    databases' locks, such as other runs' table creation, are theirs)."""
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        locks = connection.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = "
            "(SELECT oid FROM pg_database WHERE datname = current_database())").fetchone()[0]
        idle = connection.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND state LIKE 'idle in transaction%'").fetchone()[0]
    return locks, idle


def test_a_refused_command_ends_its_turns_with_it(workers, postgres_url):
    this, other = workers
    listing = seed_market(this, on_offer=10)
    this.ledger.open_account("org-acme", owner=BUYER)
    this.place_order(listing, 4, BUYER, "org-acme")
    assert open_turns(postgres_url) == (0, 0)  # the save's commit ended them

    with pytest.raises(NotEnoughAvailableError):
        this.place_order(listing, 8, BUYER, "org-acme")  # refused after its batch read
    assert open_turns(postgres_url) == (0, 0)
    other.place_order(listing, 6, BUYER, "org-acme")  # would wait for ever on a held turn
    assert other.get_listing(listing).reserved == 10


def test_a_turn_held_far_too_long_fails_the_waiting_command_instead_of_hanging_it(
        workers, postgres_url):
    this, other = workers
    listing = seed_market(this)
    this.ledger.open_account("org-acme", owner=BUYER)
    this.place_order(listing, 2, BUYER, "org-acme")
    other.store.TURN_TIMEOUT = "200ms"
    # Something (a stuck process) holds the listing's turn and never lets go.
    with psycopg.connect(postgres_url, autocommit=True) as stuck:
        stuck.execute("BEGIN")
        stuck.execute("SELECT pg_advisory_xact_lock(%s)",
                      [_lock_key(UUID(listing))])
        with pytest.raises(StoreOperationalError, match="lock timeout"):
            other.place_order(listing, 3, BUYER, "org-acme")
        stuck.execute("ROLLBACK")
    assert open_turns(postgres_url) == (0, 0)  # the failed command left nothing open
    other.place_order(listing, 3, BUYER, "org-acme")  # and the next one goes through
    assert this.get_listing(listing).reserved == 5


def test_a_stale_save_in_a_turn_is_rolled_back_and_run_again(workers, postgres_url):
    this, other = workers
    listing = seed_market(this)
    this.ledger.open_account("org-acme", owner=BUYER)
    this.place_order(listing, 2, BUYER, "org-acme")  # cached
    other.store._batch_reads = False  # saves without taking turns, as a process without locks
    conflicts = counting_conflicts([this])
    save = this.store.save
    raced = []

    def save_after_a_racer(*aggregates):
        if not raced:  # between this command's read and its save, another sale lands
            raced.append(other.place_order(listing, 3, BUYER, "org-acme"))
        return save(*aggregates)

    this.store.save = save_after_a_racer
    this.place_order(listing, 5, BUYER, "org-acme")
    assert conflicts == [1]  # refused once, rolled back, read afresh and saved
    assert open_turns(postgres_url) == (0, 0)
    assert other.get_listing(listing).reserved == 2 + 3 + 5
    assert_sound(other)


def test_listings_read_in_one_batch_are_up_to_date_with_their_projects(workers):
    this, other = workers
    listing = seed_market(other)
    other.ledger.open_account("org-acme", owner=BUYER)
    assert [str(item.id) for item in this.listings()] == [listing]  # now in this one's cache
    other.place_order(listing, 4, BUYER, "org-acme")
    with counted_queries() as reading:
        (fresh,) = this.listings()
    assert fresh.reserved == 4
    assert this.listed_projects()[PROJECT].details.registry_id == PROJECT
    # The store's position, the catalogue, then the listing and the project in one batch each.
    assert reading["queries"] <= 4, reading
    with pytest.raises(AggregateNotFoundError):
        this.store.read_many([account_id("nobody")])


def test_a_held_save_stores_any_bytes_and_topic_exactly_as_given(workers):
    # The held transaction's insert sends its values as parameters (Kapok's recorder):
    # whatever bytes a state holds (quotes, backslashes, NUL, braces: an encrypted state
    # could hold any) and whatever a topic says are stored and read back unchanged.
    this, _ = workers
    recorder = this.recorder
    states = [bytes(range(256)), b"'; DROP TABLE x; --", b'{"a": "\\\\x00"}', b""]
    topics = ["tests.integration.sample:Thing.Happened", "x:Y'); --", "a:\"b\" {c,d}", "%s:%(x)s"]
    originator = UUID("00000000-0000-4000-8000-00000000beef")
    stored = [StoredEvent(originator, version, topic, state)
              for version, (topic, state) in enumerate(zip(topics, states), start=1)]
    with recorder.datastore.get_connection() as connection, recorder.holding(connection):
        recorder.take_turns_and_read(connection, "10s", [_lock_key(originator)], [], [], [])
        ids = recorder.insert_events(stored)
        assert connection.info.transaction_status == TransactionStatus.IDLE  # committed
    assert len(ids) == len(states)
    assert [(event.originator_version, event.topic, event.state)
            for event in recorder.select_events(originator)] == [
        (event.originator_version, event.topic, event.state) for event in stored]


def test_values_of_a_held_command_go_only_as_values(workers, postgres_url):
    # Every value of the held transaction's two statements is a parameter: a lock timeout
    # with SQL in it is refused by the database as a timeout, changing nothing, and values
    # of the wrong type are refused as such, never read as SQL.
    recorder = workers[0].recorder
    some = UUID("00000000-0000-4000-8000-000000000001")
    for bad in ("10s'; COMMIT; --", "10s; SELECT 1", ""):
        with recorder.datastore.get_connection() as connection, recorder.holding(connection):
            with pytest.raises(psycopg.errors.InvalidParameterValue, match="lock_timeout"):
                recorder.take_turns_and_read(connection, bad, [1], [some], [0], [1])
    for keys, ids, after, most in (([1], ["1'); DROP TABLE x; --"], [0], [1]),
                                   (["1; --"], [some], [0], [1]), ([1], [some], ["0 OR 1 = 1"], [1]),
                                   ([1], [some], [0], ["1'"])):
        with recorder.datastore.get_connection() as connection, recorder.holding(connection):
            with pytest.raises(psycopg.errors.DataError):
                recorder.take_turns_and_read(connection, "10s", keys, ids, after, most)
    with psycopg.connect(postgres_url, autocommit=True) as outside:  # no turn left held
        assert outside.execute("SELECT pg_try_advisory_lock(1)").fetchone()[0] is True
