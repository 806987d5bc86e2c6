"""A simulator for the ledger: random command sequences checked against an independent model.

Hypothesis drives issuance, transfers (by quantity or serial range), retirements,
cancellations and reversals between a few accounts. The model below knows where every single
serial is, with none of the ledger's block arithmetic; after every step the ledger, its read
model, a replay of its event log and a freshly started ledger must all agree with it.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections import Counter
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from ledger.domain.accounts import BUFFER_POOL, Account
from ledger.adapters.store import Store
from ledger.application import Ledger
from ledger.domain.errors import (
    AccountKindError,
    CreditsAlreadyRetiredError,
    CreditsCancelledError,
    InsufficientCreditsError,
    InvalidCommandError,
    LedgerError,
    SerialsNotHeldError,
    UnknownAccountError,
)
from ledger.audit.invariants import validate
from ledger.domain.issuance import FIRST_SERIAL, SerialCounter
from ledger.read.replay import replay
from ledger.domain.serials import SerialRange
from testbed.builders import INVENTORY, claim, ledger_with_project
from tests.conftest import POSTGRES_ADMIN_DSN, require_postgres

PROJECT = "VCS-1067"
PROJECT_BUFFER_PERCENT = "15"  # the builders' project's default
HOLDERS = (INVENTORY, "acme", "globex")
ACCOUNTS = (*HOLDERS, BUFFER_POOL)
VINTAGES = (2019, 2020, 2021)
RETIRED, CANCELLED = "retired", "cancelled"


class FrequentlySnapshottingStore(Store):
    """The ledger's store, snapshotting every few events so that short runs load from
    snapshots too."""

    name = Store.name  # the same tables: eventsourcing names them after the application
    snapshotting_intervals = {Account: 4, SerialCounter: 4}


class FrequentlySnapshottingLedger(Ledger):
    store_class = FrequentlySnapshottingStore


class RegistryModel:
    """Where each serial is: an account's name, "retired" or "cancelled". Deliberately naive."""

    def __init__(self) -> None:
        self.next_serial = FIRST_SERIAL
        self.batches: dict[int, tuple[int, int, int, int]] = {}  # batch -> vintage, first, last, buffer
        self.place: dict[int, str] = {}
        self.batch_of: dict[int, int] = {}
        self.opened = set(HOLDERS)  # the buffer pool opens with the first buffer share

    def issue(self, vintage: int, quantity: int, percent: Fraction) -> tuple[int, int, int, int]:
        batch, first, last = len(self.batches) + 1, self.next_serial, self.next_serial + quantity - 1
        buffer = int(quantity * percent / 100 + Fraction(1, 2))  # half up, on exact fractions
        self.batches[batch] = (vintage, first, last, buffer)
        for serial in range(first, last + 1):
            self.batch_of[serial] = batch
            self.place[serial] = BUFFER_POOL if serial > last - buffer else INVENTORY
        if buffer:
            self.opened.add(BUFFER_POOL)
        self.next_serial = last + 1
        return batch, first, last, buffer

    def held_by(self, account: str) -> list[int]:
        """The account's serials, oldest vintage first, then batch, then serial."""
        serials = [s for s, where in self.place.items() if where == account]
        return sorted(serials, key=lambda s: (self.batches[self.batch_of[s]][0], self.batch_of[s], s))

    def runs(self, serials) -> set[tuple[int, int, int]]:
        """Serials as maximal (batch, first, last) runs: what the ledger's blocks must be."""
        runs: list[list[int]] = []
        for serial in sorted(serials):
            if runs and runs[-1][2] + 1 == serial and runs[-1][0] == self.batch_of[serial]:
                runs[-1][2] = serial
            else:
                runs.append([self.batch_of[serial], serial, serial])
        return {tuple(run) for run in runs}

    def move(self, serials, to: str) -> None:
        for serial in serials:
            self.place[serial] = to

    def refusal_for_range(self, account: str, wanted: SerialRange) -> tuple[type, ...]:
        """Why the ledger must refuse to take ``wanted`` from ``account`` (empty: it must not)."""
        for serial in range(wanted.first, wanted.last + 1):
            where = self.place.get(serial)
            if where != account:  # the first serial missing decides the explanation
                return {RETIRED: (CreditsAlreadyRetiredError,),
                        CANCELLED: (CreditsCancelledError,)}.get(where, (SerialsNotHeldError,))
        return ()

    def per_batch(self, where_to_status) -> Counter:
        return Counter((self.batch_of[s], where_to_status(where)) for s, where in self.place.items())


def serials_in(blocks) -> list[int]:
    return sorted(serial for block in blocks for serial in range(block.first, block.last + 1))


def blocks_as_runs(blocks) -> set[tuple[int, int, int]]:
    return {(block.batch, block.first, block.last) for block in blocks}


def ranges_to_take(model: RegistryModel, account: str):
    """A range inside one of the account's runs (mostly), or anywhere near the issued serials."""
    runs = sorted(model.runs(model.held_by(account)))
    anywhere = st.integers(FIRST_SERIAL - 2, model.next_serial + 2).flatmap(
        lambda first: st.builds(SerialRange, st.just(first), st.integers(first, first + 30))
    )
    if not runs:
        return anywhere
    inside = st.sampled_from(runs).flatmap(
        lambda run: st.integers(run[1], run[2]).flatmap(
            lambda first: st.builds(SerialRange, st.just(first), st.integers(first, run[2]))
        )
    )
    return st.one_of(inside, inside, anywhere)


class LedgerSimulation(RuleBasedStateMachine):
    """One run of commands on a store of its own (``new_database`` is set per store)."""

    def __init__(self) -> None:
        super().__init__()
        self.url, self.drop_database = self.new_database()
        self.ledger = FrequentlySnapshottingLedger(database=self.url)
        ledger_with_project(self.ledger, vintages=VINTAGES, accounts=HOLDERS[1:])
        self.model = RegistryModel()
        self.steps = 0
        self.last_command = None  # (command, key, result) of the last success, to send again

    def teardown(self) -> None:
        self.ledger.close()
        self.drop_database()

    # --- running a command ----------------------------------------------------------------
    def attempt(self, refusals: tuple[type, ...], command):
        """Runs ``command`` under a fresh idempotency key. If ``refusals`` name errors, the
        ledger must raise exactly one of them and write nothing; else it must succeed."""
        self.steps += 1
        key = f"step-{self.steps}"
        before = self.ledger.recorder.max_notification_id()
        if not refusals:
            result = command(key)
            self.last_command = (command, key, result)
            return result
        with pytest.raises(LedgerError) as refused:
            command(key)
        assert type(refused.value) in refusals, f"{refused.value!r}; expected one of {refusals}"
        assert self.ledger.recorder.max_notification_id() == before
        return None

    def refusal_to_send(self, account: str, receiver: str | None = None) -> tuple[type, ...]:
        if account not in self.model.opened or (receiver and receiver not in self.model.opened):
            return (UnknownAccountError,)
        if BUFFER_POOL in (account, receiver):
            return (AccountKindError,)
        return ()

    def refusal_to_take(self, account: str, quantity: int | None, serials: SerialRange | None):
        if account not in self.model.opened:
            return (UnknownAccountError,)
        if serials is not None:
            return self.model.refusal_for_range(account, serials)
        if quantity > len(self.model.held_by(account)):
            return (InsufficientCreditsError,)
        return ()

    def taken(self, account: str, quantity: int | None, serials: SerialRange | None) -> list[int]:
        if serials is not None:
            return list(range(serials.first, serials.last + 1))
        return self.model.held_by(account)[:quantity]

    def sender(self, data) -> str:
        """Mostly a holder with credits to give; now and then any account, the pool included."""
        with_credits = [name for name in HOLDERS if self.model.held_by(name)]
        return data.draw(st.sampled_from(with_credits * 3 + list(ACCOUNTS)), label="from")

    def amount(self, data, account: str):
        """(quantity, None) or (None, serial range), drawn for a command on ``account``."""
        if data.draw(st.booleans(), label="by quantity"):
            # Mostly what the account can give, sometimes a little more than it holds.
            held = len(self.model.held_by(account))
            return data.draw(st.integers(1, held + 3), label="quantity"), None
        return None, data.draw(ranges_to_take(self.model, account), label="serials")

    # --- the rules --------------------------------------------------------------------------
    @initialize(quantity=st.integers(20, 200))
    def first_issuance(self, quantity):
        self.issue(2020, quantity, None)  # something to trade from the first step on

    @rule(vintage=st.sampled_from(VINTAGES), quantity=st.integers(1, 60),
          percent=st.sampled_from([None, "0", "10", "12.5", "50"]))
    def issue(self, vintage, quantity, percent):
        buffer_percent = None if percent is None else Decimal(percent)
        result = self.attempt((), lambda key: self.ledger.issue(
            PROJECT, vintage, quantity, buffer_percent=buffer_percent, idempotency_key=key))
        percent = Fraction(percent or PROJECT_BUFFER_PERCENT)
        batch, first, last, buffer = self.model.issue(vintage, quantity, percent)
        assert (result["batch"], result["buffer_quantity"]) == (batch, buffer)
        assert SerialRange.parse(result["serial"]) == SerialRange(first, last)

    @rule(data=st.data())
    def transfer(self, data):
        sender = self.sender(data)
        # Mostly to another holder; now and then to itself or into the pool, which is refused.
        others = [name for name in HOLDERS if name != sender]
        receiver = data.draw(st.sampled_from(others * 3 + [BUFFER_POOL, sender]), label="to")
        quantity, serials = self.amount(data, sender)
        refusals = (
            (InvalidCommandError,) if sender == receiver
            else self.refusal_to_send(sender, receiver)
            or self.refusal_to_take(sender, quantity, serials)
        )
        moved = self.taken(sender, quantity, serials)
        result = self.attempt(refusals, lambda key: self.ledger.transfer(
            sender, receiver, quantity=quantity, serials=serials, idempotency_key=key))
        if result is not None:
            self.model.move(moved, receiver)
            assert result["quantity"] == len(moved)

    @rule(data=st.data())
    def retire(self, data):
        account = self.sender(data)
        quantity, serials = self.amount(data, account)
        refusals = self.refusal_to_send(account) or self.refusal_to_take(account, quantity, serials)
        retired = self.taken(account, quantity, serials)
        result = self.attempt(refusals, lambda key: self.ledger.retire(
            account, claim(), quantity=quantity, serials=serials, idempotency_key=key))
        if result is not None:
            self.model.move(retired, RETIRED)
            record = self.ledger.get_retirement(result["retirement_id"])
            assert serials_in(record.blocks) == sorted(retired)

    @rule(data=st.data())
    def cancel(self, data):
        account = self.sender(data)
        quantity, serials = self.amount(data, account)
        refusals = self.refusal_to_take(account, quantity, serials)  # even the pool may cancel
        cancelled = self.taken(account, quantity, serials)
        result = self.attempt(refusals, lambda key: self.ledger.cancel(
            account, "found in audit", quantity=quantity, serials=serials, idempotency_key=key))
        if result is not None:
            self.model.move(cancelled, CANCELLED)

    @rule(data=st.data())
    def reverse(self, data):
        in_pool = len(self.model.held_by(BUFFER_POOL))
        quantity = data.draw(st.integers(1, in_pool + 3), label="quantity")
        refusals = self.refusal_to_take(BUFFER_POOL, quantity, None)
        cancelled = self.taken(BUFFER_POOL, quantity, None)
        result = self.attempt(refusals, lambda key: self.ledger.reverse(
            PROJECT, quantity, "fire", idempotency_key=key))
        if result is not None:
            self.model.move(cancelled, CANCELLED)

    @precondition(lambda self: RETIRED in self.model.place.values())
    @rule(data=st.data(), receiver=st.sampled_from(HOLDERS), again=st.booleans())
    def retired_serials_stay_retired(self, data, receiver, again):
        retired = sorted(s for s, where in self.model.place.items() if where == RETIRED)
        serial = data.draw(st.sampled_from(retired), label="retired serial")
        wanted = SerialRange(serial, serial + data.draw(st.integers(0, 5)))
        for holder in HOLDERS:  # whoever retired it, nobody can move it now
            if again:
                def command(key, holder=holder):
                    return self.ledger.retire(holder, claim(), serials=wanted, idempotency_key=key)
            elif holder != receiver:
                def command(key, holder=holder):
                    return self.ledger.transfer(holder, receiver, serials=wanted, idempotency_key=key)
            else:
                continue
            self.attempt((CreditsAlreadyRetiredError,), command)

    @precondition(lambda self: self.last_command is not None)
    @rule()
    def a_retried_command_changes_nothing(self):
        command, key, first_result = self.last_command
        before = self.ledger.recorder.max_notification_id()
        assert command(key) == first_result
        assert self.ledger.recorder.max_notification_id() == before

    # --- what must hold after every step ----------------------------------------------------
    @invariant()
    def accounts_hold_exactly_the_models_serials(self):
        for name in sorted(self.model.opened):
            assert blocks_as_runs(self.ledger.get_account(name).blocks) == \
                self.model.runs(self.model.held_by(name)), name

    @invariant()
    def replay_accounts_for_every_issued_tonne_once(self):
        state = replay(self.ledger)
        assert validate(state) == []
        placed = [(where, block) for where, blocks in state.holdings.items() for block in blocks]
        placed += [(RETIRED, b) for blocks in state.retired.values() for b in blocks]
        placed += [(CANCELLED, b) for blocks in state.cancelled.values() for b in blocks]
        # No serial in two places ...
        serials = serials_in(block for _, block in placed)
        assert len(serials) == len(set(serials))
        # ... and per batch: issued = held + buffer + retired + cancelled, as in the model.
        status = {INVENTORY: "held", "acme": "held", "globex": "held", BUFFER_POOL: "buffer"}
        ledger_counts = Counter()
        for where, block in placed:
            ledger_counts[(block.batch, status.get(where, where))] += block.quantity
        assert ledger_counts == self.model.per_batch(lambda where: status.get(where, where))
        for batch, (_, first, last, _) in self.model.batches.items():
            assert sum(q for (b, _), q in ledger_counts.items() if b == batch) == last - first + 1
        assert {b.batch: b.quantity for b in state.batches.values()} == {
            batch: last - first + 1 for batch, (_, first, last, _) in self.model.batches.items()
        }

    @invariant()
    def read_model_balances_are_positive_and_match(self):
        rows = self.ledger.caught_up_view().balances()
        assert all(row["quantity"] > 0 for row in rows)
        by_account = Counter()
        for row in rows:
            if row["status"] in ("held", "buffer"):
                by_account[row["account"]] += row["quantity"]
        assert by_account == Counter(
            {name: len(self.model.held_by(name)) for name in self.model.opened}
        )

    @invariant()
    def a_new_ledger_loads_the_same_blocks_from_the_store(self):
        fresh = Ledger(database=self.url)
        try:
            for name in sorted(self.model.opened):
                assert blocks_as_runs(fresh.get_account(name).blocks) == \
                    self.model.runs(self.model.held_by(name)), name
        finally:
            fresh.close()


# --- one store per run ------------------------------------------------------------------
def sqlite_database():
    folder = tempfile.mkdtemp(prefix="kapok-stateful-")
    return f"sqlite:///{folder}/kapok.db", lambda: shutil.rmtree(folder, ignore_errors=True)


def postgres_database():
    import psycopg

    name = f"kapok_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_ADMIN_DSN, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')

    def drop():
        with psycopg.connect(POSTGRES_ADMIN_DSN, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return f"postgresql://postgres@127.0.0.1:5432/{name}", drop


def simulation_settings(max_examples: int) -> settings:
    return settings(max_examples=max_examples, stateful_step_count=20, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def test_random_command_sequences_keep_the_registry_consistent_on_sqlite():
    class OnSQLite(LedgerSimulation):
        new_database = staticmethod(sqlite_database)

    run_state_machine_as_test(OnSQLite, settings=simulation_settings(15))


@pytest.mark.postgres
def test_random_command_sequences_keep_the_registry_consistent_on_postgres():
    require_postgres()

    class OnPostgres(LedgerSimulation):
        new_database = staticmethod(postgres_database)

    run_state_machine_as_test(OnPostgres, settings=simulation_settings(8))
