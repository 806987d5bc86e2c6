"""The ledger's read model: balances, accounts, issuances and each serial's history.

Tables kept in the event store's own database, written by one projection only
(``ledger.read.projection.ViewProjection``, run by ``kapok worker`` with eventsourcing's projection
runner): each batch of events is applied in one transaction together with the tracked position,
so the view is never ahead of, or behind, what it says it has processed. Web requests only read
it; one that must see its own write waits for the tracked position (``LedgerView.wait``).

The tables are never migrated: when a version of Kapok changes their definitions (``tables``
of the concrete view class), they are dropped and the view replays the log from the start.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from typing import Any

from eventsourcing.sqlite import SQLiteFactory

from ledger.domain.accounts import STATUS_BY_KIND, Account
from ledger.domain.errors import SerialNotFoundError
from ledger.domain.issuance import Issuance
from ledger.domain.mirror import MirroredVintage, RegistryCheck, RegistryRange
from ledger.domain.projects import Project
from ledger.domain.retirements import CONFIRMED, FAILED, PENDING, Retirement
from ledger.adapters.sql_recorders import Statement, tables_recorder


TABLES = [
    """CREATE TABLE IF NOT EXISTS kapok_accounts (
        account_id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, kind TEXT NOT NULL,
        owner TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS kapok_projects (
        registry_id TEXT PRIMARY KEY, name TEXT NOT NULL, project_type TEXT NOT NULL,
        country TEXT NOT NULL, proponent TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS kapok_balances (
        account TEXT NOT NULL, project TEXT NOT NULL, vintage INTEGER NOT NULL,
        status TEXT NOT NULL, quantity BIGINT NOT NULL,
        PRIMARY KEY (account, project, vintage, status))""",
    """CREATE TABLE IF NOT EXISTS kapok_issuances (
        batch BIGINT PRIMARY KEY, project TEXT NOT NULL, vintage INTEGER NOT NULL,
        first_serial BIGINT NOT NULL, last_serial BIGINT NOT NULL,
        buffer_quantity BIGINT NOT NULL, issued_at TEXT NOT NULL)""",
    """CREATE INDEX IF NOT EXISTS kapok_issuances_range ON kapok_issuances (first_serial)""",
    """CREATE TABLE IF NOT EXISTS kapok_serial_history (
        position BIGINT NOT NULL, seq INTEGER NOT NULL, batch BIGINT NOT NULL,
        first_serial BIGINT NOT NULL, last_serial BIGINT NOT NULL, event TEXT NOT NULL,
        account TEXT NOT NULL, counterparty TEXT, reference TEXT NOT NULL,
        occurred_at TEXT NOT NULL, project TEXT NOT NULL, vintage INTEGER NOT NULL,
        serial TEXT NOT NULL,
        PRIMARY KEY (position, seq))""",
    """CREATE INDEX IF NOT EXISTS kapok_serial_history_batch
        ON kapok_serial_history (batch, first_serial)""",
    """CREATE TABLE IF NOT EXISTS kapok_retirements (
        retirement_id TEXT PRIMARY KEY, account TEXT NOT NULL, beneficiary TEXT NOT NULL,
        reason TEXT NOT NULL, quantity BIGINT NOT NULL, retired_at TEXT NOT NULL,
        position BIGINT NOT NULL, registry_phase TEXT, registry_serials TEXT,
        registry_date TEXT, registry_note TEXT)""",
    # What mirrored projects' registry exports showed, range by range (ledger.domain.mirror).
    """CREATE TABLE IF NOT EXISTS kapok_registry_ranges (
        project TEXT NOT NULL, vintage INTEGER NOT NULL, batch BIGINT NOT NULL,
        first_serial BIGINT NOT NULL, last_serial BIGINT NOT NULL, tail TEXT NOT NULL,
        state TEXT NOT NULL, retired_on TEXT, beneficiary TEXT NOT NULL, reason TEXT NOT NULL,
        details TEXT NOT NULL, source TEXT NOT NULL, position BIGINT NOT NULL,
        seq INTEGER NOT NULL, PRIMARY KEY (position, seq))""",
    """CREATE INDEX IF NOT EXISTS kapok_registry_ranges_serial
        ON kapok_registry_ranges (first_serial)""",
    """CREATE TABLE IF NOT EXISTS kapok_registry_checks (
        run_id TEXT PRIMARY KEY, project TEXT NOT NULL, source TEXT NOT NULL,
        in_step INTEGER NOT NULL, differences TEXT NOT NULL, confirmed INTEGER NOT NULL,
        checked_at TEXT NOT NULL, position BIGINT NOT NULL)""",
]

UPSERT_BALANCE = (
    "INSERT INTO kapok_balances (account, project, vintage, status, quantity) "
    "VALUES (:account, :project, :vintage, :status, :quantity) "
    "ON CONFLICT (account, project, vintage, status) "
    "DO UPDATE SET quantity = kapok_balances.quantity + excluded.quantity"
)
INSERT_HISTORY = (
    "INSERT INTO kapok_serial_history VALUES (:position, :seq, :batch, :first, :last, "
    ":event, :account, :counterparty, :reference, :occurred_at, :project, :vintage, :serial)"
)
UPDATE_PHASE = (
    "UPDATE kapok_retirements SET registry_phase = :phase, registry_serials = :serials, "
    "registry_date = :on, registry_note = :note WHERE retirement_id = :id"
)
_BALANCE_FILTERS = {
    "account": " AND b.account = :account", "project": " AND b.project = :project",
    "vintage": " AND b.vintage = :vintage", "status": " AND b.status = :status",
}


# Events that move serials into or out of an account.
_MOVES = (Account.Issued, Account.Imported, Account.Received, Account.Sent, Account.Retired,
          Account.RetirementReturned, Account.Cancelled)


def registry_check(row) -> dict:
    """A row of ``kapok_registry_checks`` as its readers take it: differences decoded."""
    return dict(row) | {"differences": json.loads(row["differences"]),
                        "in_step": bool(row["in_step"])}


class ViewBehindError(Exception):
    """The read model has not reached a position within the time allowed (the worker that
    writes it is behind, or not running)."""


class KnownAccounts(dict):
    """Account ids and their (name, kind), facts that never change once an account is
    opened: filled from the events as they are translated and, for an account opened in an
    event some other process applied, from the view's own table."""

    def __init__(self, recorder):
        super().__init__()
        self.recorder = recorder

    def __missing__(self, account_id: str) -> tuple[str, str]:
        rows = self.recorder.query(
            "SELECT name, kind FROM kapok_accounts WHERE account_id = :id", {"id": account_id})
        if not rows:
            raise KeyError(account_id)
        self[account_id] = found = (rows[0]["name"], rows[0]["kind"])
        return found


class LedgerView:
    """Reads and updates the read-model tables through a dialect's tracking recorder.

    Subclasses (the market's view) add tables and extend ``_translate``; one tracked
    position covers them all, so they are always consistent with each other. The position is
    tracked under the application's name, as eventsourcing's projection runner tracks it."""

    tables = TABLES

    def __init__(self, app):
        self.app = app  # the view shares the application's connection pool
        self.tracking_name = app.name
        self.recorder = tables_recorder(app, f"{type(self).__name__}Recorder", self.tables,
                                        projection=self.tracking_name)
        self.known_accounts = KnownAccounts(self.recorder)
        self._seen = 0  # the highest position this process has seen the view reach
        self._asking = threading.Lock()

    # --- updating (by the projection only) ---------------------------------------------
    def translate(self, event, position: int) -> tuple[list[Statement], dict]:
        """The statements that record ``event`` (at ``position`` in the log) and the
        balance changes it makes, keyed by (account, project, vintage, status)."""
        deltas: dict[tuple, int] = defaultdict(int)
        return self._translate(event, position, deltas, self.known_accounts), deltas

    def apply(self, first: int, last: int, statements: list[Statement], deltas: dict) -> None:
        """Records the translated events from position ``first`` to ``last`` in one
        transaction. Raises IntegrityError, changing nothing, when the view has already
        reached ``first`` (another process applied them)."""
        statements = statements + [
            (UPSERT_BALANCE, dict(zip(("account", "project", "vintage", "status"), key), quantity=q))
            for key, q in deltas.items() if q
        ]
        self.recorder.write_range(self.tracking_name, first, last, statements)

    def catch_up(self) -> int:
        """Applies every event not yet in the view, in this process, through the same
        projection as the worker's; returns the new position. For the command line and
        tests: web requests never call it."""
        from ledger.read.projection import ViewProjection

        return ViewProjection(self).catch_up()

    def position(self) -> int:
        return self.recorder.max_tracking_id(self.tracking_name) or 0

    def wait(self, position: int | None, timeout: float) -> None:
        """Returns once the view has applied the event at ``position`` (None: nothing to
        wait for); raises ViewBehindError when ``timeout`` seconds pass first."""
        if position is None or self._seen >= position:
            return
        deadline = time.monotonic() + timeout
        pause = 0.002
        while True:
            # One question at a time: every waiting thread reads its answer.
            if self._asking.acquire(timeout=max(0.0, deadline - time.monotonic())):
                try:
                    if self._seen < position:
                        self._seen = max(self._seen, self.position())
                finally:
                    self._asking.release()
            if self._seen >= position:
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ViewBehindError(
                    f"the read model has not yet reached position {position}")
            time.sleep(min(pause, remaining))
            pause = min(pause * 2, 0.05)

    def _translate(self, event, position: int, deltas: dict, accounts: dict) -> list[Statement]:
        occurred_at = event.timestamp.isoformat()
        if isinstance(event, Account.Opened):
            accounts[str(event.originator_id)] = (event.name, event.kind)
            return [(
                "INSERT INTO kapok_accounts VALUES (:id, :name, :kind, :owner)",
                {"id": str(event.originator_id), "name": event.name, "kind": event.kind,
                 "owner": event.owner},
            )]
        if isinstance(event, Project.Registered):
            details = event.details
            return [(
                "INSERT INTO kapok_projects VALUES (:id, :name, :type, :country, :proponent)",
                {"id": details.registry_id, "name": details.name, "type": details.project_type,
                 "country": details.country, "proponent": details.proponent},
            )]
        if isinstance(event, Issuance.Issued):
            return [(
                "INSERT INTO kapok_issuances VALUES (:batch, :project, :vintage, :first, :last, "
                ":buffer, :at)",
                {"batch": event.batch, "project": event.project, "vintage": event.vintage,
                 "first": event.first, "last": event.last, "buffer": event.buffer_quantity,
                 "at": occurred_at},
            )]
        if isinstance(event, Retirement.Recorded):
            mirrored = any(block.mirrored for block in event.blocks)
            return [(
                "INSERT INTO kapok_retirements VALUES (:id, :account, :beneficiary, :reason, "
                ":quantity, :at, :position, :phase, NULL, NULL, NULL)",
                {"id": event.retirement_id, "account": event.account,
                 "beneficiary": event.claim.beneficiary, "reason": event.claim.reason,
                 "quantity": sum(b.quantity for b in event.blocks), "at": occurred_at,
                 "position": position, "phase": PENDING if mirrored else None},
            )]
        if isinstance(event, Retirement.ConfirmedAtRegistry):
            return [(UPDATE_PHASE, {
                "phase": CONFIRMED, "serials": " ".join(event.registry_serials),
                "on": event.on.isoformat(), "note": event.by,
                "id": event.retirement_id})]
        if isinstance(event, Retirement.FailedAtRegistry):
            return [(UPDATE_PHASE, {"phase": FAILED, "serials": None, "on": None,
                                    "note": event.reason, "id": event.retirement_id})]
        if isinstance(event, MirroredVintage.Started):
            return []
        if isinstance(event, MirroredVintage.RangesRecorded):
            return self._registry_ranges(event, position)
        if isinstance(event, RegistryCheck.Recorded):
            return [(
                "INSERT INTO kapok_registry_checks VALUES (:id, :project, :source, :in_step, "
                ":differences, :confirmed, :at, :position)",
                {"id": event.run_id, "project": event.project, "source": event.source,
                 "in_step": int(not event.differences),
                 "differences": json.dumps(list(event.differences)),
                 "confirmed": event.confirmed, "at": occurred_at, "position": position})]
        if not isinstance(event, _MOVES):
            return []
        name, kind = accounts[str(event.originator_id)]
        status = STATUS_BY_KIND[kind]
        sign = -1 if isinstance(event, (Account.Sent, Account.Retired, Account.Cancelled)) else 1
        for block in event.blocks:
            deltas[(name, block.project, block.vintage, status)] += sign * block.quantity
            if isinstance(event, Account.Retired):
                deltas[(name, block.project, block.vintage, "retired")] += block.quantity
            elif isinstance(event, Account.Cancelled):
                deltas[(name, block.project, block.vintage, "cancelled")] += block.quantity
            elif isinstance(event, Account.RetirementReturned):
                deltas[(name, block.project, block.vintage, "retired")] -= block.quantity
        if isinstance(event, Account.Sent):
            return []  # the receiving side's row records the move
        history_event, counterparty, reference = {
            Account.Issued: lambda: ("issued", None, f"batch {event.issuance_batch}"),
            Account.Imported: lambda: ("imported", None, event.import_id),
            Account.Received: lambda: ("transferred", event.from_account, event.transfer_id),
            Account.Retired: lambda: ("retired", None, event.retirement_id),
            Account.RetirementReturned: lambda: ("returned", None, event.retirement_id),
            Account.Cancelled: lambda: ("cancelled", None, event.cancellation_id),
        }[type(event)]()
        return [
            (INSERT_HISTORY, {
                "position": position, "seq": seq, "batch": block.batch, "first": block.first,
                "last": block.last, "event": history_event, "account": name,
                "counterparty": counterparty, "reference": reference, "occurred_at": occurred_at,
                "project": block.project, "vintage": block.vintage, "serial": block.serial,
            })
            for seq, block in enumerate(event.blocks)
        ]

    @staticmethod
    def _registry_ranges(event, position: int) -> list[Statement]:
        return [(
            "INSERT INTO kapok_registry_ranges VALUES (:project, :vintage, :batch, :first, "
            ":last, :tail, :state, :retired_on, :beneficiary, :reason, :details, :source, "
            ":position, :seq)",
            {"project": event.project, "vintage": event.vintage, "batch": row.batch, "first": row.first, "last": row.last,
             "tail": row.tail, "state": row.state,
             "retired_on": row.retired_on.isoformat() if row.retired_on else None,
             "beneficiary": row.beneficiary, "reason": row.reason, "details": row.details,
             "source": event.source, "position": position, "seq": seq})
            for seq, row in enumerate(map(RegistryRange.from_list, event.rows))]

    # --- reading -------------------------------------------------------------------------
    def balances(self, account: str | None = None, project: str | None = None,
                 vintage: int | None = None, status: str | None = None) -> list[dict]:
        """Rows of (account, kind, owner, project, vintage, status, quantity), non-zero only."""
        sql = (
            "SELECT b.account, a.kind, a.owner, b.project, b.vintage, b.status, b.quantity "
            "FROM kapok_balances b JOIN kapok_accounts a ON a.name = b.account "
            "WHERE b.quantity <> 0"
        )
        params: dict[str, Any] = {}
        for column, value in (("account", account), ("project", project),
                              ("vintage", vintage), ("status", status)):
            if value is not None:
                sql += _BALANCE_FILTERS[column]
                params[column] = value
        sql += " ORDER BY b.account, b.project, b.vintage, b.status"
        return [dict(row) for row in self.recorder.query(sql, params)]

    def accounts(self) -> list[dict]:
        rows = self.recorder.query("SELECT name, kind, owner FROM kapok_accounts ORDER BY name", {})
        return [dict(row) for row in rows]

    def projects(self) -> list[dict]:
        rows = self.recorder.query("SELECT * FROM kapok_projects ORDER BY registry_id", {})
        return [dict(row) for row in rows]

    def issuances(self) -> list[dict]:
        rows = self.recorder.query("SELECT * FROM kapok_issuances ORDER BY batch", {})
        return [dict(row) for row in rows]

    def serial_history(self, serial: int) -> dict:
        """Who holds ``serial`` now, and every movement of it since issuance.

        Raises SerialNotFoundError if no issuance contains it."""
        issuance = self.recorder.query(
            "SELECT * FROM kapok_issuances WHERE first_serial <= :n AND last_serial >= :n",
            {"n": serial},
        ) or self.recorder.query(  # a mirrored project's serial, as its registry numbers it
            "SELECT batch, project, vintage FROM kapok_registry_ranges "
            "WHERE first_serial <= :n AND last_serial >= :n ORDER BY position LIMIT 1",
            {"n": serial},
        )
        if not issuance:
            raise SerialNotFoundError(f"serial {serial} was never issued")
        batch = dict(issuance[0])
        rows = [dict(row) for row in self.recorder.query(
            "SELECT h.*, a.kind FROM kapok_serial_history h "
            "JOIN kapok_accounts a ON a.name = h.account "
            "WHERE h.batch = :batch AND h.first_serial <= :n AND h.last_serial >= :n "
            "ORDER BY h.position, h.seq",
            {"batch": batch["batch"], "n": serial},
        )]
        if not rows:  # shown by the registry's export, never held in Kapok
            raise SerialNotFoundError(f"serial {serial} is not held in Kapok")
        last = rows[-1]
        status = last["event"] if last["event"] in ("retired", "cancelled") else STATUS_BY_KIND[last["kind"]]
        return {
            "serial": serial, "batch": batch["batch"], "project": batch["project"],
            "vintage": batch["vintage"], "account": last["account"], "status": status,
            "history": [
                {key: row[key] for key in ("event", "account", "counterparty", "reference",
                                           "first_serial", "last_serial", "occurred_at")}
                | {"position": row["position"]}
                for row in rows
            ],
        }

    def retirement_position(self, retirement_id: str) -> int | None:
        """Where the retirement's record stands in the event log."""
        rows = self.recorder.query(
            "SELECT position FROM kapok_retirements WHERE retirement_id = :id",
            {"id": retirement_id.strip().upper()},
        )
        return rows[0]["position"] if rows else None

    def pending_retirements(self) -> list[str]:
        """Retirements of mirrored serials still pending at their registry, oldest first."""
        rows = self.recorder.query(
            "SELECT retirement_id FROM kapok_retirements WHERE registry_phase = :pending "
            "ORDER BY position", {"pending": PENDING})
        return [row["retirement_id"] for row in rows]

    def pending_retirement_rows(self, limit: int = 200) -> list[dict]:
        """The pending retirements, oldest first, as the console lists them."""
        rows = self.recorder.query(
            "SELECT retirement_id, account, beneficiary, quantity, retired_at "
            "FROM kapok_retirements WHERE registry_phase = :pending ORDER BY position "
            "LIMIT :limit", {"pending": PENDING, "limit": max(0, int(limit))})
        return [dict(row) for row in rows]

    def registry_checks(self, project: str | None = None, limit: int = 100) -> list[dict]:
        """Reconciliation runs, newest first, with their differences."""
        rows = self.recorder.query(
            "SELECT * FROM kapok_registry_checks WHERE project = :project OR :any = 1 "
            "ORDER BY position DESC LIMIT :limit",
            {"project": (project or "").upper(), "any": int(not project),
             "limit": max(0, int(limit))})
        return [registry_check(row) for row in rows]

    def registry_ranges(self, project: str, limit: int = 500, offset: int = 0) -> list[dict]:
        """What the registry's exports showed of a mirrored project, in the order recorded."""
        rows = self.recorder.query(
            "SELECT * FROM kapok_registry_ranges WHERE project = :project "
            "ORDER BY position, seq LIMIT :limit OFFSET :offset",
            {"project": project.upper(), "limit": max(0, int(limit)),
             "offset": max(0, int(offset))})
        return [dict(row) for row in rows]

    def serial_status(self, serial: int) -> str | None:
        try:
            return self.serial_history(serial)["status"]
        except SerialNotFoundError:
            return None


    # --- the event log, paged for auditors -------------------------------------------------
    def _events_filter(self, first: int | None, last: int | None,
                       topic: str | None) -> tuple[str, str, dict[str, Any]]:
        """The events table's position column, and the FROM and WHERE clauses that choose
        the events, with their parameters."""
        table = self.recorder.table_name(self.app.recorder.events_table_name)
        column = "rowid" if isinstance(self.app.factory, SQLiteFactory) else "notification_id"
        where, params = ["1 = 1"], {}
        if first is not None:
            where.append(f"{column} >= :first")
            params["first"] = first
        if last is not None:
            where.append(f"{column} <= :last")
            params["last"] = last
        if topic is not None:
            where.append("topic = :topic")
            params["topic"] = topic
        return column, f"FROM {table} WHERE {' AND '.join(where)}", params

    def count_events(self, first: int | None = None, last: int | None = None,
                     topic: str | None = None) -> int:
        """How many stored events lie between positions ``first`` and ``last`` (inclusive)
        with this topic (any, if None)."""
        _column, events, params = self._events_filter(first, last, topic)
        return self.recorder.query(f"SELECT COUNT(*) AS n {events}", params)[0]["n"]

    def event_position_at(self, offset: int, first: int | None = None, last: int | None = None,
                          topic: str | None = None) -> int | None:
        """The position of the ``offset``-th (from 0) such event, or None past the last."""
        column, events, params = self._events_filter(first, last, topic)
        rows = self.recorder.query(
            f"SELECT {column} AS position {events} ORDER BY {column} LIMIT 1 OFFSET :offset",
            {**params, "offset": offset})
        return rows[0]["position"] if rows else None

    def retirements(self) -> list[dict]:
        """Every retirement recorded (id, account, beneficiary, reason, quantity, retired_at),
        newest first."""
        rows = self.recorder.query(
            "SELECT retirement_id, account, beneficiary, reason, quantity, retired_at, "
            "registry_phase FROM kapok_retirements ORDER BY position DESC", {})
        return [dict(row) for row in rows]
