"""Racing writers on one PostgreSQL store: optimistic concurrency must never double-spend."""

from __future__ import annotations

import multiprocessing
import random
import threading
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal

import pytest

from ledger.application import Ledger
from ledger.domain.errors import InsufficientCreditsError, LedgerError
from ledger.audit.invariants import validate
from ledger.domain.issuance import FIRST_SERIAL
from ledger.read.replay import replay
from ledger.domain.serials import SerialRange
from testbed.builders import INVENTORY, claim, ledger_with_project

pytestmark = pytest.mark.postgres

PROJECT = "VCS-1067"
STOCK = 200
BUYERS = ("buyer-0", "buyer-1", "buyer-2", "buyer-3")


@dataclass
class Outcome:
    """What one racing writer did: its successful moves and the errors it was refused with."""

    moves: list[tuple[str, str, int, list[str]]] = field(default_factory=list)  # kind, id, t, serials
    refusals: list[str] = field(default_factory=list)


def stocked(url: str) -> None:
    """The builders' project with STOCK tonnes in the inventory (no buffer) and four buyers."""
    ledger = Ledger(database=url)
    try:
        ledger_with_project(ledger, accounts=BUYERS)
        ledger.issue(PROJECT, 2020, STOCK, buffer_percent=Decimal(0))
    finally:
        ledger.close()


def drain(url: str, writer: int, startup, start) -> Outcome:
    """Transfers or retires 1-5 t at a time out of the inventory, with its own Ledger, until
    the inventory is empty. Only ledger refusals are caught: anything else fails the test."""
    chance = random.Random(writer)
    outcome = Outcome()
    # Ledgers are built one at a time: building them at once is a race of its own (see
    # test_ledgers_started_at_the_same_moment_all_start); here the commands race.
    with startup:
        ledger = Ledger(database=url)
    try:
        start.wait()
        while True:
            quantity = chance.randint(1, 5)
            try:
                if chance.random() < 0.5:
                    buyer = BUYERS[writer % len(BUYERS)]  # with 8 writers, two per buyer
                    result = ledger.transfer(INVENTORY, buyer, quantity=quantity)
                    outcome.moves.append(("transfer", buyer, result["quantity"], result["serials"]))
                else:
                    result = ledger.retire(INVENTORY, claim(f"Writer {writer}"), quantity=quantity)
                    outcome.moves.append(("retire", result["retirement_id"], result["quantity"],
                                          result["serials"]))
            except LedgerError as error:
                outcome.refusals.append(type(error).__name__)
                if ledger.get_account(INVENTORY).balance == 0:
                    return outcome
    finally:
        ledger.close()


def serials_of(printed: list[str]) -> list[int]:
    ranges = [SerialRange.parse(serial) for serial in printed]
    return [n for r in ranges for n in range(r.first, r.last + 1)]


def assert_every_tonne_moved_once_and_losers_only_ran_short(url: str, outcomes: list[Outcome]) -> None:
    moves = [move for outcome in outcomes for move in outcome.moves]
    # Every tonne went somewhere, exactly once, and the answers say which serials.
    assert sum(quantity for _, _, quantity, _ in moves) == STOCK
    handed_out = [n for *_, printed in moves for n in serials_of(printed)]
    assert sorted(handed_out) == list(range(FIRST_SERIAL, FIRST_SERIAL + STOCK))

    ledger = Ledger(database=url)
    try:
        # What the answers claim is what the store holds.
        assert ledger.get_account(INVENTORY).balance == 0
        for buyer in BUYERS:
            expected = sorted(n for kind, to, _, printed in moves if (kind, to) == ("transfer", buyer)
                              for n in serials_of(printed))
            blocks = ledger.get_account(buyer).blocks
            assert [n for b in blocks for n in range(b.first, b.last + 1)] == expected, buyer
        for kind, retirement_id, quantity, printed in moves:
            if kind == "retire":
                record = ledger.get_retirement(retirement_id)
                assert [b.serial for b in record.blocks] == printed
        state = replay(ledger)
        assert validate(state) == []
        assert sum(b.quantity for blocks in state.retired.values() for b in blocks) == sum(
            quantity for kind, _, quantity, _ in moves if kind == "retire"
        )
    finally:
        ledger.close()
    # A writer that lost a race was told there was not enough left, nothing else: not that
    # the serials were "already held", nor to retry because of concurrent changes.
    refusals = Counter(name for outcome in outcomes for name in outcome.refusals)
    assert refusals and set(refusals) == {InsufficientCreditsError.__name__}, refusals


def test_eight_threads_draining_one_account_move_every_tonne_exactly_once(postgres_url):
    stocked(postgres_url)
    startup, start = threading.Lock(), threading.Barrier(8, timeout=60)

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(lambda writer: drain(postgres_url, writer, startup, start), range(8)))

    assert_every_tonne_moved_once_and_losers_only_ran_short(postgres_url, outcomes)


@pytest.mark.slow
def test_four_processes_draining_one_account_move_every_tonne_exactly_once(postgres_url):
    stocked(postgres_url)
    context = multiprocessing.get_context("spawn")

    with context.Manager() as manager:
        startup, start = manager.Lock(), manager.Barrier(4, timeout=60)
        with ProcessPoolExecutor(max_workers=4, mp_context=context) as pool:
            outcomes = list(pool.map(drain, [postgres_url] * 4, range(4), [startup] * 4, [start] * 4))

    assert_every_tonne_moved_once_and_losers_only_ran_short(postgres_url, outcomes)


def test_ledgers_started_at_the_same_moment_all_start(postgres_url):
    # gunicorn boots its workers together and each builds its Ledger on the same database,
    # whose tables already exist: every one of them must come up.
    stocked(postgres_url)
    start = threading.Barrier(8, timeout=60)

    def start_ledger(_) -> None:
        start.wait()
        Ledger(database=postgres_url).close()

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(start_ledger, range(8)))


def test_two_requests_with_one_idempotency_key_at_once_have_one_effect(postgres_url):
    stocked(postgres_url)
    rounds = 10
    ledgers = [Ledger(database=postgres_url) for _ in range(2)]
    try:
        for round_ in range(rounds):
            start = threading.Barrier(2, timeout=60)

            def send(ledger: Ledger) -> dict:
                # A client's retry races its own first attempt: both carry the same key.
                start.wait()
                return ledger.transfer(INVENTORY, "buyer-0", quantity=5,
                                       idempotency_key=f"order-{round_}")

            with ThreadPoolExecutor(max_workers=2) as pool:
                first, second = pool.map(send, ledgers)

            assert first == second
        assert ledgers[0].get_account("buyer-0").balance == 5 * rounds
        assert ledgers[0].get_account(INVENTORY).balance == STOCK - 5 * rounds
        sent = [n for n in ledgers[0].recorder.select_notifications(start=1, limit=10_000)
                if n.topic.endswith("Account.Sent")]
        assert len(sent) == rounds
        assert validate(replay(ledgers[0])) == []
    finally:
        for ledger in ledgers:
            ledger.close()


def test_read_models_caught_up_at_once_by_eight_ledgers_count_every_tonne_once(postgres_url):
    stocked(postgres_url)
    seller = Ledger(database=postgres_url)
    try:
        for buyer in BUYERS:
            seller.transfer(INVENTORY, buyer, quantity=7)
            seller.retire(buyer, claim(), quantity=2)
        expected = sorted((r["account"], r["status"], r["quantity"]) for r in replay(seller).balances())
        seller.view  # creates the read model's tables, empty: opening them at once is another race
    finally:
        seller.close()
    startup, start = threading.Lock(), threading.Barrier(8, timeout=60)

    def read_balances(_) -> list[tuple]:
        # Eight fresh ledgers, each catching the read model up from the start at once.
        with startup:
            ledger = Ledger(database=postgres_url)
        try:
            start.wait()
            rows = ledger.caught_up_view().balances()
            return sorted((r["account"], r["status"], r["quantity"]) for r in rows
                          if r["status"] in ("held", "buffer"))
        finally:
            ledger.close()

    with ThreadPoolExecutor(max_workers=8) as pool:
        seen = list(pool.map(read_balances, range(8)))

    assert seen == [expected] * 8


def test_ledgers_opening_the_read_model_of_a_new_database_at_once_all_open_it(postgres_url):
    # The first requests after a deployment on a new database reach several workers at once;
    # each opens the read model, whose tables do not exist yet.
    stocked(postgres_url)
    startup, start = threading.Lock(), threading.Barrier(8, timeout=60)

    def open_read_model(_) -> int:
        with startup:
            ledger = Ledger(database=postgres_url)
        try:
            start.wait()
            return len(ledger.caught_up_view().balances())
        finally:
            ledger.close()

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert list(pool.map(open_read_model, range(8))) == [1] * 8
