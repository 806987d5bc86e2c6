"""The persistence collaborator: how the registry's aggregates are loaded, cached, locked,
saved and retried, in one place, on eventsourcing's application machinery.

A use case hands ``Store.run`` a command: a function that loads what it needs (``load``,
``get``, ``exists``), calls the domain and returns the aggregates it changed with its result.
``run`` saves them atomically, runs the command again on fresh state when a concurrent save
won, and under an idempotency key answers a repeat with the first result. This module is the
only one that touches eventsourcing's internals (tests/contract pins them).
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from copy import copy, deepcopy
from datetime import date, datetime
from decimal import Decimal
from typing import Callable, Sequence
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.persistence import IntegrityError, JSONTranscoder

from ledger.adapters.batch_reads import events_after, supports_batch_reads
from ledger.adapters.moved_modules import LEDGER_MOVES, register_moved_modules
from ledger.adapters.sql_recorders import creating_tables, schema_lock
from ledger.adapters.transcodings import LEDGER_TRANSCODINGS
from ledger.domain.accounts import Account
from ledger.domain.commands import CommandRecord, check_key, command_record_id, fingerprint
from ledger.domain.errors import ConcurrencyError
from ledger.domain.issuance import SerialCounter
from ledger.domain.mirror import MirroredVintage
from ledger.read.view import LedgerView
from ledger.settings import AGGREGATE_CACHE_MAXSIZE, database_url, persistence_env

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


class Store(Application[UUID]):
    """The ledger's event store with its unit of work. Subclasses name what else they store
    (``transcodings``, ``moved_modules``, ``snapshotting_intervals``) and their read model
    (``view_class``)."""

    name = "kapok"
    # Accounts are touched by every sale: load them from a recent snapshot.
    snapshotting_intervals = {Account: 100, SerialCounter: 100, MirroredVintage: 100}
    transcodings = tuple(LEDGER_TRANSCODINGS)
    moved_modules = LEDGER_MOVES

    view_class = LedgerView

    TURN_TIMEOUT = "10s"  # see _taking_turns

    def __init__(self, env: dict | None = None, database: str | None = None):
        self.database = database or (env or {}).get("KAPOK_DATABASE_URL") or database_url()
        settings = persistence_env(self.database)
        # Keep recently used aggregates in memory; each get() still fast-forwards from the
        # store, and returns a deep copy, so a refused or conflicting command changes nothing.
        # What is hot (listings, inventories, journals, a buyer's account, an order between
        # placing and paying) is few and recent; every sale adds five aggregates it will not
        # read again. A full garbage collection scans the whole cache, so it stays small
        # (docs/BENCHMARKS.md, the order load's full collections).
        settings["AGGREGATE_CACHE_MAXSIZE"] = str(AGGREGATE_CACHE_MAXSIZE.read())
        self._given_env = dict(env or {})
        env = {**settings, **self._given_env}
        with schema_lock(env):
            creating_tables(lambda: super(Store, self).__init__(env=env))
        self._view = None
        self._making_view = threading.Lock()
        # What one command has loaded or created, and which aggregates it knows to be absent.
        self._unit = threading.local()
        self._batch_reads = supports_batch_reads(self.recorder)

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        register_moved_modules(self.moved_modules)
        for transcoding in self.transcodings:
            transcoder.register(transcoding)

    # --- the read model ------------------------------------------------------------------
    @property
    def view(self):
        """The ledger's read model (balances, serial history), as the worker's projection
        has written it (``ledger.read.projection``)."""
        if self._view is None:
            with self._making_view:  # threads of one process share one view and its tables
                if self._view is None:
                    self._view = self.view_class(self)
        return self._view

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

    # --- the unit of work ----------------------------------------------------------------
    def run(self, name: str, fields: dict, key: str | None, command: Callable,
            hot: Sequence[UUID] = ()) -> dict:
        """Runs ``command`` (returning changed aggregates and a result) and saves atomically,
        retrying on a concurrent write; under an idempotency key, a repeat returns the first
        result and changes nothing, and the command's named ``fields`` tell a repeat from a
        different command under the same key. ``hot`` names aggregates that most commands of this kind
        change (a listing every sale touches): see ``_taking_turns``."""
        if key is not None:
            check_key(key)
        digest = fingerprint(name, fields) if key is not None else None
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
        batch read (``prefetch``); its save commits that transaction (see
        ``ledger/adapters/pg_recorder.py``), which ends the turns just as the events become visible.
        Correctness never rests on the locks: a save of stale aggregates still fails and is
        retried."""
        holding = getattr(self.recorder, "holding", None)
        if not hot or not self._batch_reads or holding is None:
            yield
            return
        keys = sorted({_lock_key(aggregate_id) for aggregate_id in hot})
        with self.recorder.datastore.get_connection() as connection, holding(connection):
            # Taken by the command's first batch read, in the same statement (prefetch).
            # A turn not granted within TURN_TIMEOUT (something holds it far longer than a
            # command takes) fails the command, rather than leave it waiting for ever: the
            # caller hears the database is busy (a 503 on the web) and nothing is written.
            self._unit.turn = (connection, self.TURN_TIMEOUT, keys)
            self._unit.held = connection  # the command's later batch reads use it too
            try:
                yield
            finally:
                self._unit.turn = self._unit.held = None

    def load(self, aggregate_id: UUID):
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
                return self.remember(fresh[aggregate_id])
        else:
            cached = self.cached(aggregate_id)
            if cached is not None:  # as the repository would, with a cheaper copy
                events = self.recorder.select_events(aggregate_id, gt=cached.version)
                return self.remember(copy_aggregate(self._fast_forward(cached, events)))
        aggregate = self.repository.get(aggregate_id, deepcopy_from_cache=False)
        if self.repository.cache is not None:  # it stays the cache's: the command gets a copy
            aggregate = copy_aggregate(aggregate)
        return self.remember(aggregate)

    def prefetch(self, *aggregate_ids: UUID) -> None:
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

    def read_many(self, aggregate_ids: Sequence[UUID]) -> list:
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
                  if (aggregate := self.cached(aggregate_id)) is not None}
        held = None if turn else getattr(self._unit, "held", None)
        found = events_after(self.recorder, {i: a.version for i, a in cached.items()},
                             [i for i in aggregate_ids if i not in cached],
                             turns=turn, probe_limit=WHOLE_BELOW, connection=held)
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

    def cached(self, aggregate_id: UUID):
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
        not two, and what it changed, so that what this process last saw (``cached``) is
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

    def remember(self, aggregate):
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

    def exists(self, aggregate_id: UUID) -> bool:
        """Whether the store holds the aggregate (not whether this command created it)."""
        absent = getattr(self._unit, "absent", None)
        if absent is not None and aggregate_id in absent:
            return False
        return bool(self.recorder.select_events(aggregate_id, limit=1))

    def get(self, aggregate_id: UUID, error: type[Exception], what: str):
        try:
            return self.load(aggregate_id)
        except AggregateNotFoundError:
            raise error(f"unknown {what}") from None

    def singleton(self, aggregate_id: UUID, factory: Callable):
        """The aggregate, or a new one from ``factory`` saved with the running command."""
        try:
            return self.load(aggregate_id)
        except AggregateNotFoundError:
            return self.remember(factory())
