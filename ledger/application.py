"""The ledger's service layer: each public method is one registry use case.

Every command loads the aggregates it needs, runs the domain checks, and saves every changed
aggregate in one atomic ``save()``. A concurrent write to the same aggregates makes the save
fail as a whole (optimistic concurrency); the command is then run again on fresh state.
"""

from __future__ import annotations

import contextlib
import random
import threading
import secrets
import time
from copy import copy, deepcopy
from dataclasses import replace
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Callable, Iterable, Sequence
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.persistence import IntegrityError, JSONTranscoder

from ledger.adapters.batch_reads import events_after, supports_batch_reads
from ledger.domain.accounts import (
    ACCOUNT_KINDS,
    BUFFER,
    BUFFER_POOL,
    HOLDING,
    INVENTORY,
    Account,
    account_id,
    check_account_name,
)
from ledger.domain.commands import CommandRecord, check_key, command_record_id, fingerprint
from ledger.domain.errors import (
    AccountKindError,
    ConcurrencyError,
    CreditsAlreadyRetiredError,
    CreditsCancelledError,
    DuplicateError,
    InsufficientCreditsError,
    InvalidCommandError,
    InvalidQuantityError,
    InvalidSerialError,
    SerialNotFoundError,
    SerialsNotHeldError,
    UnknownAccountError,
    UnknownProjectError,
    UnknownRetirementError,
)
from ledger.domain.ids import named_id
from ledger.domain.issuance import SERIAL_COUNTER_ID, Issuance, SerialCounter, issuance_id
from ledger.domain.projects import Project, ProjectDetails, Vintage, project_id
from ledger.domain.retirements import (
    CANCELLATION,
    REVERSAL,
    Cancellation,
    Retirement,
    RetirementClaim,
)
from ledger.domain.serials import SerialBlock, SerialRange, total_quantity
from ledger.settings import AGGREGATE_CACHE_MAXSIZE, database_url, persistence_env
from ledger.adapters.sql_recorders import creating_tables, schema_lock
from ledger.domain.text import check_printable
from ledger.adapters.moved_modules import LEDGER_MOVES, register_moved_modules
from ledger.adapters.transcodings import LEDGER_TRANSCODINGS

# No real issuance comes near this (the world emits ~40 Gt CO2e a year); it keeps typos and
# overflow attacks out of the serial counter.
MAX_QUANTITY = 10_000_000_000
MAX_ATTEMPTS = 30
# An aggregate not in memory with fewer events than this comes whole with a command's batch
# read; a longer one is loaded on its own, from its latest snapshot.
WHOLE_BELOW = 16


class StaleReadError(Exception):
    """Aggregates of one command were loaded at different moments of a concurrent change."""


def _lock_key(aggregate_id: UUID) -> int:
    """An aggregate's advisory lock key: PostgreSQL's keys are signed 64-bit integers."""
    key = aggregate_id.int >> 64
    return key - ((key >= 2**63) << 64)


# Values an aggregate's state is mostly made of, which never change once made: a copy of the
# aggregate can share them (deepcopy rebuilds each UUID and datetime through __reduce_ex__).
_IMMUTABLE = frozenset({str, int, bool, float, type(None), Decimal, UUID, datetime, date})


def copy_aggregate(aggregate):
    """A deep copy of ``aggregate``, sharing only its immutable values. The containers its
    class names in ``flat_containers`` hold immutable values only (an account's serial
    blocks): a shallow copy of them is a deep one, at C speed."""
    kind = type(aggregate)
    flat = getattr(kind, "flat_containers", ())
    clone = object.__new__(kind)
    memo: dict = {}
    vars(clone).update({
        name: value if type(value) in _IMMUTABLE
        else copy(value) if name in flat else deepcopy(value, memo)
        for name, value in vars(aggregate).items()})
    return clone


def check_quantity(quantity: Any) -> int:
    """Returns ``quantity`` as whole tonnes, or raises InvalidQuantityError."""
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        raise InvalidQuantityError(f"invalid quantity {quantity!r}: whole tonnes expected")
    if not 1 <= quantity <= MAX_QUANTITY:
        raise InvalidQuantityError(
            f"invalid quantity {quantity}: from 1 to {MAX_QUANTITY:,} tonnes"
        )
    return quantity


def public_id(prefix: str) -> str:
    """A short, unguessable public id such as ``KAP-RET-7F3K9Q2M4XBD``."""
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U
    number = secrets.randbits(60)  # 12 characters of 5 bits, drawn at once
    return f"{prefix}-" + "".join(alphabet[(number >> shift) & 31] for shift in range(0, 60, 5))


class Ledger(Application[UUID]):
    """Kapok's carbon registry: projects, issuance, transfer, retirement, cancellation."""

    name = "kapok"
    # Accounts are touched by every sale: load them from a recent snapshot.
    snapshotting_intervals = {Account: 100, SerialCounter: 100}

    TURN_TIMEOUT = "10s"  # see _taking_turns

    def __init__(self, env: dict | None = None, database: str | None = None):
        self.database = database or (env or {}).get("KAPOK_DATABASE_URL") or database_url()
        settings = persistence_env(self.database)
        # Keep recently used aggregates in memory; each get() still fast-forwards from the
        # store, and returns a deep copy, so a refused or conflicting command changes nothing.
        # What is hot (listings, inventories, journals, a buyer's account, an order between
        # placing and paying) is few and recent; every sale adds five aggregates it will not
        # read again. A full garbage collection scans the whole cache: 2-3 ms at 2,000, about
        # 40 ms at 10,000 (bench/http_load.py's order load, one process).
        settings["AGGREGATE_CACHE_MAXSIZE"] = str(AGGREGATE_CACHE_MAXSIZE.read())
        self._given_env = dict(env or {})
        env = {**settings, **self._given_env}
        with schema_lock(env):
            creating_tables(lambda: super(Ledger, self).__init__(env=env))
        self._view = None
        self._making_view = threading.Lock()
        # What one command has loaded or created, and which aggregates it knows to be absent.
        self._unit = threading.local()
        self._batch_reads = supports_batch_reads(self.recorder)

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        register_moved_modules(LEDGER_MOVES)
        for transcoding in LEDGER_TRANSCODINGS:
            transcoder.register(transcoding)

    # --- the read model ------------------------------------------------------------------
    @property
    def view(self):
        """The ledger's read model (balances, serial history), as the worker's projection
        has written it (``ledger.read.projection``)."""
        if self._view is None:
            with self._making_view:  # threads of one process share one view and its tables
                if self._view is None:
                    self._view = self.view_class()(self)
        return self._view

    def view_class(self):
        from ledger.read.view import LedgerView

        return LedgerView

    def view_env(self) -> dict:
        """The settings another instance of this application needs to open the same store
        (the projection runner makes one to subscribe to)."""
        return {**self._given_env, "KAPOK_DATABASE_URL": self.database}

    def caught_up_view(self):
        """The read model, first caught up in this process: for the command line and
        tests; web requests read ``view`` and wait for it (``saved_position``)."""
        self.view.catch_up()
        return self.view

    def saved_position(self) -> int | None:
        """The log position of the last event this thread saved since
        ``forget_saved_position`` (None if it saved nothing): what the view must reach
        before it shows this thread's writes."""
        return getattr(self._unit, "saved_position", None)

    def forget_saved_position(self) -> None:
        self._unit.saved_position = None

    # --- projects ------------------------------------------------------------------------
    def register_project(self, details: ProjectDetails, idempotency_key: str | None = None):
        """Registers a project. Raises InvalidCommandError, DuplicateError."""
        details.check()

        def command():
            if self._exists(project_id(details.registry_id)):
                raise DuplicateError(f"project {details.registry_id} is already registered")
            project = Project(details)
            return [project], {"project": details.registry_id}

        return self._run("register_project", {"details": repr(details)}, idempotency_key, command)

    def add_vintage(self, registry_id: str, vintage: Vintage, idempotency_key: str | None = None):
        """Adds a vintage year to a project (a no-op if it is there already)."""

        def command():
            project = self.get_project(registry_id)
            project.add_vintage(vintage, today=date.today())
            return [project], {"project": registry_id, "vintage": vintage.year}

        return self._run("add_vintage", {"p": registry_id, "v": repr(vintage)}, idempotency_key, command)

    def get_project(self, registry_id: str) -> Project:
        return self._get(project_id(registry_id), UnknownProjectError, f"project {registry_id}")

    # --- accounts ------------------------------------------------------------------------
    def open_account(self, name: str, kind: str = HOLDING, owner: str = "",
                     idempotency_key: str | None = None) -> dict:
        """Opens an account. Raises InvalidCommandError, DuplicateError."""
        check_account_name(name)
        check_printable("owner", owner)
        if name == BUFFER_POOL:
            raise InvalidCommandError(f"{BUFFER_POOL} is the registry's own buffer account")
        if kind not in ACCOUNT_KINDS:
            raise InvalidCommandError(f"invalid account kind {kind!r}: one of {', '.join(ACCOUNT_KINDS)}")

        def command():
            if self._exists(account_id(name)):
                raise DuplicateError(f"account {name} already exists")
            return [Account(name, kind, owner)], {"account": name, "kind": kind}

        payload = {"name": name, "kind": kind, "owner": owner}
        return self._run("open_account", payload, idempotency_key, command)

    def ensure_account(self, name: str, kind: str, owner: str = "") -> None:
        """Opens the account unless it exists (for seeding and system accounts)."""
        try:
            self.open_account(name, kind, owner)
        except DuplicateError:
            pass

    def get_account(self, name: str) -> Account:
        return self._get(account_id(name), UnknownAccountError, f"account {name}")

    # --- issuance ------------------------------------------------------------------------
    def issue(self, registry_id: str, vintage: int, quantity: int,
              buffer_percent: Decimal | None = None, to_account: str | None = None,
              idempotency_key: str | None = None) -> dict:
        """Issues ``quantity`` new tonnes of a project vintage as one serial batch.

        The buffer share (the project's default unless given) goes to the buffer pool, the
        rest to the inventory account. Raises UnknownProjectError, UnknownVintageError,
        UnknownAccountError, InvalidQuantityError, InvalidCommandError.
        """
        check_quantity(quantity)
        if buffer_percent is not None and not (
            Decimal(buffer_percent).is_finite() and 0 <= Decimal(buffer_percent) < 100
        ):
            raise InvalidCommandError("buffer percent must be from 0 to below 100")

        def command():
            project = self.get_project(registry_id)
            project.vintage(vintage)
            percent = Decimal(project.details.buffer_percent if buffer_percent is None else buffer_percent)
            inventory = self.get_account(to_account or project.details.inventory_account)
            if inventory.kind not in (INVENTORY, HOLDING):
                raise AccountKindError(f"cannot issue into {inventory.kind} account {inventory.name}")
            buffer = self._buffer_pool()
            counter = self._serial_counter()
            buffer_quantity = int((quantity * percent / 100).to_integral_value(ROUND_HALF_UP))
            batch, first, last = counter.allocate(quantity)
            details = project.details
            issuance = Issuance(
                batch=batch, project=details.registry_id, vintage=vintage,
                country=details.country, first=first, last=last,
                buffer_quantity=buffer_quantity, buffer_percent=str(percent),
                inventory_account=inventory.name, buffer_account=buffer.name,
            )
            block = SerialBlock(vintage, batch, first, last, details.registry_id, details.country)
            split = last - buffer_quantity
            changed = [counter, issuance]
            if split >= first:
                inventory.record_issued([block.sub(first, split)], batch)
                changed.append(inventory)
            if buffer_quantity:
                buffer.record_issued([block.sub(split + 1, last)], batch)
                changed.append(buffer)
            result = {
                "batch": batch, "project": details.registry_id, "vintage": vintage,
                "quantity": quantity, "buffer_quantity": buffer_quantity,
                "serial": block.serial, "account": inventory.name,
            }
            return changed, result

        payload = {"p": registry_id, "v": vintage, "q": quantity, "b": str(buffer_percent),
                   "to": to_account}
        return self._run("issue", payload, idempotency_key, command)

    # --- movements -----------------------------------------------------------------------
    def transfer(self, from_account: str, to_account: str, quantity: int | None = None,
                 serials: SerialRange | None = None, idempotency_key: str | None = None) -> dict:
        """Moves ``quantity`` tonnes (oldest vintage first) or exactly ``serials`` between
        accounts, both changed in one save. Raises InsufficientCreditsError,
        SerialsNotHeldError, CreditsAlreadyRetiredError, UnknownAccountError, ..."""
        self._check_amount(quantity, serials)
        if from_account == to_account:
            raise InvalidCommandError("cannot transfer to the same account")

        def command():
            self._prefetch(account_id(from_account), account_id(to_account))
            sender, receiver = self.get_account(from_account), self.get_account(to_account)
            sender.check_can_send()
            if receiver.kind == BUFFER:
                raise AccountKindError("credits go into the buffer pool only at issuance")
            blocks = self._pick(sender, quantity, serials)
            transfer_id = public_id("KAP-TRF")
            sender.send(blocks, receiver.name, transfer_id)
            try:
                receiver.receive(blocks, sender.name, transfer_id)
            except InvalidSerialError:
                # The receiver already holds serials the sender still shows: one of the two
                # was loaded before a concurrent save. Nothing is saved; run again.
                raise StaleReadError(f"{sender.name} and {receiver.name} were read at different moments") from None
            return [sender, receiver], _movement_result("transfer_id", transfer_id, blocks, sender.name, receiver.name)

        payload = {"from": from_account, "to": to_account, "q": quantity, "s": repr(serials)}
        return self._run("transfer", payload, idempotency_key, command)

    def retire(self, account: str, claim: RetirementClaim, quantity: int | None = None,
               serials: SerialRange | None = None, idempotency_key: str | None = None) -> dict:
        """Retires tonnes from ``account`` on the claim's beneficiary's behalf, for good.
        Returns the public retirement id with the serials retired."""
        self._check_amount(quantity, serials)
        claim = replace(claim, beneficiary=claim.beneficiary.strip(), reason=claim.reason.strip())
        claim.check()

        def command():
            holder = self.get_account(account)
            holder.check_can_send()
            blocks = self._pick(holder, quantity, serials)
            retirement_id = public_id("KAP-RET")
            holder.retire(blocks, retirement_id)
            retirement = Retirement(retirement_id, holder.name, tuple(blocks), claim)
            return [holder, retirement], _movement_result("retirement_id", retirement_id, blocks, holder.name, None)

        payload = {"a": account, "c": repr(claim), "q": quantity, "s": repr(serials)}
        return self._run("retire", payload, idempotency_key, command)

    def cancel(self, account: str, reason: str, quantity: int | None = None,
               serials: SerialRange | None = None, idempotency_key: str | None = None) -> dict:
        """An operator cancels tonnes from an account, with a reason; final like retirement."""
        return self._cancel(CANCELLATION, account, reason, quantity, serials, None, idempotency_key)

    def reverse(self, registry_id: str, quantity: int, reason: str,
                idempotency_key: str | None = None) -> dict:
        """Records a loss event on a project: cancels ``quantity`` buffer units from the pool."""
        self.get_project(registry_id)
        return self._cancel(REVERSAL, BUFFER_POOL, reason, quantity, None, registry_id, idempotency_key)

    def _cancel(self, kind, account, reason, quantity, serials, project, idempotency_key):
        self._check_amount(quantity, serials)
        reason = (reason or "").strip()
        if not reason or len(reason) > 500:
            raise InvalidCommandError("a cancellation needs a reason (at most 500 characters)")

        def command():
            holder = self.get_account(account)
            blocks = self._pick(holder, quantity, serials)
            cancellation_id = public_id("KAP-CAN")
            holder.cancel(blocks, cancellation_id)
            record = Cancellation(cancellation_id, kind, holder.name, tuple(blocks), reason, project)
            return [holder, record], _movement_result("cancellation_id", cancellation_id, blocks, holder.name, None)

        payload = {"k": kind, "a": account, "r": reason, "q": quantity, "s": repr(serials), "p": project}
        return self._run(kind, payload, idempotency_key, command)

    def get_retirement(self, retirement_id: str) -> Retirement:
        return self._get(named_id("retirement", retirement_id.strip().upper()),
                         UnknownRetirementError, f"retirement {retirement_id}")

    def get_issuance(self, batch: int) -> Issuance:
        return self._get(issuance_id(batch), SerialNotFoundError, f"batch {batch}")

    # --- plumbing ------------------------------------------------------------------------
    def _run(self, name: str, payload: dict, key: str | None, command: Callable,
             hot: Sequence[UUID] = ()) -> dict:
        """Runs ``command`` (returning changed aggregates and a result) and saves atomically,
        retrying on a concurrent write; under an idempotency key, a repeat returns the first
        result and changes nothing. ``hot`` names aggregates that most commands of this kind
        change (a listing every sale touches): see ``_taking_turns``."""
        if key is not None:
            check_key(key)
        digest = fingerprint(name, payload) if key is not None else None
        if getattr(self._unit, "aggregates", None) is not None:
            raise RuntimeError(f"{name}: commands do not nest; load and save in one command")
        for attempt in range(MAX_ATTEMPTS):
            if key is not None:
                previous = self._find_command(key)
                if previous is not None:
                    return previous.replay(name, digest)
            self._unit.aggregates, self._unit.absent = {}, set()
            try:
                with self._taking_turns(hot):
                    aggregates, result = command()
                    if key is not None:
                        aggregates.append(CommandRecord(key, name, digest, result))
                    self.save(*aggregates)
                self._cache_saved(aggregates)
            except (IntegrityError, StaleReadError):
                # Someone saved the same aggregates first: back off (exponentially, with
                # jitter, so racing writers spread out) and run again on fresh state.
                time.sleep(random.uniform(0, min(0.2, 0.002 * 2**attempt)))
                continue
            finally:
                self._unit.aggregates = self._unit.absent = None
            return result
        raise ConcurrencyError(f"{name}: too many concurrent changes, nothing was applied; retry")

    @contextlib.contextmanager
    def _taking_turns(self, hot: Sequence[UUID]):
        """Commands on the same hot aggregates take turns across processes. Optimistic
        concurrency alone lets two web workers read the same listing, and one of them then
        throws its work away, backs off and starts again: under load that was most of the
        time an order took. On PostgreSQL a command on hot aggregates runs in a transaction
        that first takes their transaction-scoped advisory locks (in the order of their keys,
        so two commands never wait for each other), in the same round trip as its first
        batch read (``_prefetch``); its save commits that transaction (see
        ``ledger/adapters/pg_recorder.py``), which ends the turns just as the events become visible.
        Correctness never rests on the locks: a save of stale aggregates still fails and is
        retried."""
        holding = getattr(self.recorder, "holding", None)
        if not hot or not self._batch_reads or holding is None:
            yield
            return
        keys = sorted({_lock_key(aggregate_id) for aggregate_id in hot})
        with self.recorder.datastore.get_connection() as connection, holding(connection):
            # Taken by the command's first batch read, in the same statement (_prefetch).
            # A turn not granted within TURN_TIMEOUT (something holds it far longer than a
            # command takes) fails the command, rather than leave it waiting for ever: the
            # caller hears the database is busy (a 503 on the web) and nothing is written.
            self._unit.turn = (connection, self.TURN_TIMEOUT, keys)
            try:
                yield
            finally:
                self._unit.turn = None

    def _load(self, aggregate_id: UUID):
        """The aggregate, loaded once per command: a command that touches an aggregate twice
        (e.g. reserve then deliver) sees its own changes. Raises AggregateNotFoundError."""
        loaded = getattr(self._unit, "aggregates", None)
        if loaded is not None:
            if aggregate_id in loaded:
                return loaded[aggregate_id]
            if aggregate_id in self._unit.absent:
                raise AggregateNotFoundError(aggregate_id)
        if self._batch_reads:  # one query, also for a short aggregate not in memory
            fresh, absent = self._batch([aggregate_id], self._turn_to_take())
            if aggregate_id in absent:
                raise AggregateNotFoundError(aggregate_id)
            if aggregate_id in fresh:
                return self._remember(fresh[aggregate_id])
        else:
            cached = self._cached(aggregate_id)
            if cached is not None:  # as the repository would, with a cheaper copy
                events = self.recorder.select_events(aggregate_id, gt=cached.version)
                return self._remember(copy_aggregate(self._fast_forward(cached, events)))
        aggregate = self.repository.get(aggregate_id)
        return self._remember(aggregate)

    def _prefetch(self, *aggregate_ids: UUID) -> None:
        """Loads what the running command is about to use in one round trip (PostgreSQL;
        elsewhere a no-op): aggregates in the cache are brought up to date, short ones that
        are not (an order or escrow another worker created) come whole, and are handed to the
        command; the others are probed, so that loading or asking about an absent one costs
        nothing. A long aggregate that is not cached is loaded later as usual (from its
        snapshot)."""
        loaded = getattr(self._unit, "aggregates", None)
        if loaded is None or not self._batch_reads:
            return
        wanted = [i for i in dict.fromkeys(aggregate_ids)
                  if i not in loaded and i not in self._unit.absent]
        fresh, absent = self._batch(wanted, self._turn_to_take())
        loaded.update(fresh)
        self._unit.absent |= absent

    def _turn_to_take(self):
        """The running command's turns, if not taken yet: its first read takes them (see
        ``_taking_turns``), and no later read does."""
        turn, self._unit.turn = getattr(self._unit, "turn", None), None
        return turn

    def _read_many(self, aggregate_ids: Sequence[UUID]) -> list:
        """Aggregates for reading, in order: on PostgreSQL those in the cache are brought up
        to date in one round trip, the others read one by one (as everywhere on SQLite).
        Raises AggregateNotFoundError."""
        if not self._batch_reads:
            return [self.repository.get(aggregate_id) for aggregate_id in aggregate_ids]
        fresh, _ = self._batch(list(dict.fromkeys(aggregate_ids)), probe=False)
        return [fresh[aggregate_id] if aggregate_id in fresh
                else self.repository.get(aggregate_id) for aggregate_id in aggregate_ids]

    def _batch(self, aggregate_ids: list[UUID], turn=None, probe: bool = True
               ) -> tuple[dict, set]:
        """One round trip: the cached aggregates among ``aggregate_ids`` brought up to date,
        the uncached ones with fewer than ``WHOLE_BELOW`` events built from them (copies, as
        the repository hands out), and (``probe``) which of the others do not exist."""
        cache = self.repository.cache
        cached = {aggregate_id: aggregate for aggregate_id in aggregate_ids
                  if (aggregate := self._cached(aggregate_id)) is not None}
        found = events_after(self.recorder, {i: a.version for i, a in cached.items()},
                             [i for i in aggregate_ids if i not in cached],
                             turns=turn, probe_limit=WHOLE_BELOW)
        fresh, absent = {}, set()
        for aggregate_id in aggregate_ids:
            events = found[aggregate_id]
            if aggregate_id in cached:
                known = cached[aggregate_id]  # up to date already, most often: no lock to take
                fresh[aggregate_id] = copy_aggregate(
                    self._fast_forward(known, events) if events else known)
            elif not events:
                if probe:
                    absent.add(aggregate_id)
            elif len(events) < WHOLE_BELOW and events[0].originator_version == 1:
                aggregate = None
                for event in map(self.mapper.to_domain_event, events):
                    aggregate = event.mutate(aggregate)
                if cache is not None:
                    cache.put(aggregate_id, aggregate)
                fresh[aggregate_id] = copy_aggregate(aggregate)
        return fresh, absent

    def _cached(self, aggregate_id: UUID):
        """The aggregate as this process last saw it, or None, without asking the store: to
        read only facts that never change once recorded (such as a listing's inventory
        account), or to bring up to date (``_batch``). Do not mutate it."""
        try:
            return self.repository.cache.get(aggregate_id)
        except (KeyError, AttributeError):
            return None

    def _fast_forward(self, aggregate, stored_events):
        """The cached aggregate with the newer events applied, under the repository's own
        lock for it (another thread may be fast-forwarding it too)."""
        repository = self.repository
        lock = repository._use_fastforward_lock(aggregate.id)
        try:
            with lock:
                for event in map(self.mapper.to_domain_event, stored_events):
                    if event.originator_version > aggregate.version:
                        aggregate = event.mutate(aggregate)
        finally:
            repository._disuse_fastforward_lock(aggregate.id)
        return aggregate

    def save(self, *objs, **kwargs):
        """As eventsourcing's ``Application.save``, less two costs every command paid: the
        pending events are collected without ``isinstance`` checks against runtime protocols
        (slow before Python 3.12), and a snapshot is taken of the aggregate just saved
        instead of being rebuilt from the store (``_take_snapshots``)."""
        processing_event = ProcessingEvent()
        for obj in objs:
            if obj is None:
                continue
            collect = getattr(obj, "collect_events", None)
            if collect is None:  # a domain event on its own
                processing_event.events.append(obj)
            else:
                processing_event.events.extend(collect())
                processing_event.aggregates[obj.id] = obj
        processing_event.saved_kwargs.update(kwargs)
        recordings = self._record(processing_event)
        positions = [recording.notification.id for recording in recordings
                     if recording.notification.id is not None]
        if positions:
            self._unit.saved_position = max(*positions, self.saved_position() or 0)
        self._take_snapshots(processing_event)
        self._notify(recordings)
        self.notify(processing_event.events)  # eventsourcing's deprecated hook, kept
        return recordings

    def _take_snapshots(self, processing_event) -> None:
        """A snapshot of each saved aggregate whose new events reach a multiple of its
        interval, taken from the aggregate in hand: it holds exactly the state of its last
        recorded event (every change goes through an event; tested against a replay), so
        reading and replaying up to a hundred events from the store again was pure cost."""
        if not (self.snapshots and self.snapshotting_intervals):
            return
        versions: dict = {}
        for event in processing_event.events:
            versions.setdefault(event.originator_id, []).append(event.originator_version)
        for aggregate_id, aggregate in processing_event.aggregates.items():
            interval = self.snapshotting_intervals.get(type(aggregate))
            saved = versions.get(aggregate_id, ())
            if interval is None or not any(v % interval == 0 for v in saved):
                continue
            if aggregate.version != max(saved):  # not the state saved: rebuild it, as before
                self.take_snapshot(aggregate_id, version=max(saved))
                continue
            snapshot_class = getattr(type(aggregate), "Snapshot", type(self).snapshot_class)
            self.snapshots.put([snapshot_class.take(aggregate)])

    def _cache_saved(self, aggregates) -> None:
        """Puts what a command saved into the aggregate cache (eventsourcing leaves it out
        when fast-forwarding): what it created, so the next command reads it with one query,
        not two, and what it changed, so that what this process last saw (``_cached``) is
        what it last wrote. The command is over: nothing but the cache's own fast-forwarding
        changes these objects any more."""
        cache = self.repository.cache
        if cache is None:
            return
        for aggregate in aggregates:
            if aggregate is None:
                continue
            try:
                cached = cache.get(aggregate.id)
            except KeyError:
                cached = None
            if cached is None or cached.version < aggregate.version:
                cache.put(aggregate.id, aggregate)

    def _remember(self, aggregate):
        """Registers an aggregate created during the running command, for later loads."""
        loaded = getattr(self._unit, "aggregates", None)
        if loaded is not None:
            loaded[aggregate.id] = aggregate
        return aggregate

    def _find_command(self, key: str) -> CommandRecord | None:
        try:
            return self.repository.get(command_record_id(key))
        except AggregateNotFoundError:
            return None

    def _exists(self, aggregate_id: UUID) -> bool:
        """Whether the store holds the aggregate (not whether this command created it)."""
        absent = getattr(self._unit, "absent", None)
        if absent is not None and aggregate_id in absent:
            return False
        return bool(self.recorder.select_events(aggregate_id, limit=1))

    def _get(self, aggregate_id: UUID, error: type[Exception], what: str):
        try:
            return self._load(aggregate_id)
        except AggregateNotFoundError:
            raise error(f"unknown {what}") from None

    def _serial_counter(self) -> SerialCounter:
        try:
            return self._load(SERIAL_COUNTER_ID)
        except AggregateNotFoundError:
            return self._remember(SerialCounter())

    def _buffer_pool(self) -> Account:
        try:
            pool = self._load(account_id(BUFFER_POOL))
        except AggregateNotFoundError:
            return self._remember(Account(BUFFER_POOL, BUFFER, "registry"))
        if pool.kind != BUFFER:  # written before the name was reserved: never pool into it
            raise AccountKindError(f"account {BUFFER_POOL} is a {pool.kind} account, not the buffer pool")
        return pool

    @staticmethod
    def _check_amount(quantity: int | None, serials: SerialRange | None) -> None:
        if (quantity is None) == (serials is None):
            raise InvalidCommandError("give either a quantity or a serial range, not both")
        if quantity is not None:
            check_quantity(quantity)

    def _pick(self, account: Account, quantity: int | None, serials: SerialRange | None):
        """The blocks to move; explains a missing serial that was retired or cancelled."""
        try:
            return account.pick(quantity, serials)
        except SerialsNotHeldError as error:
            if error.missing is None:
                raise
            status = self.view.serial_status(error.missing)
            if status == "retired":
                raise CreditsAlreadyRetiredError(
                    f"serial {error.missing} is already retired: retired credits are final",
                    missing=error.missing,
                ) from None
            if status == "cancelled":
                raise CreditsCancelledError(
                    f"serial {error.missing} was cancelled", missing=error.missing
                ) from None
            raise SerialsNotHeldError(
                f"account {account.name} does not hold serial {error.missing}",
                missing=error.missing,
            ) from None
        except InsufficientCreditsError as error:
            raise InsufficientCreditsError(f"{account.name}: {error}") from None


def _movement_result(id_name: str, id_value: str, blocks: Iterable[SerialBlock],
                     from_account: str, to_account: str | None) -> dict:
    blocks = list(blocks)
    return {
        id_name: id_value,
        "from_account": from_account,
        "to_account": to_account,
        "quantity": total_quantity(blocks),
        "serials": [block.serial for block in blocks],
    }
