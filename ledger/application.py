"""The ledger's service layer: Kapok's carbon registry, its use cases over one store.

Each use case (``ledger.usecases``) loads the aggregates it needs, runs the domain checks and
saves every changed aggregate in one atomic save; how is the store's business
(``ledger.adapters.store``): a concurrent write to the same aggregates makes the save fail
as a whole and the command runs again on fresh state.
"""

from __future__ import annotations

from ledger.adapters.store import Store
from ledger.usecases.accounts import Accounts
from ledger.usecases.cancellations import Cancellations
from ledger.usecases.issuance import Issuing
from ledger.usecases.projects import Projects
from ledger.usecases.reconciliation import Reconciliation
from ledger.usecases.registry_imports import RegistryImports
from ledger.usecases.retirements import Retirements
from ledger.usecases.sale_side import NothingSold, SaleSide
from ledger.usecases.transfers import Transfers


class StoreBacked:
    """An application whose use cases run through one store (``self.store``): what its
    readers see of that store (the web, the worker, the audit, the command line)."""

    store: Store

    @property
    def view(self):
        """The read model (balances, serial history) as the worker's projection wrote it."""
        return self.store.view

    @property
    def recorder(self):
        """The store's recorder, for reading the event log (the audit, the view's waits)."""
        return self.store.recorder

    @property
    def mapper(self):
        """Turns the recorder's stored events into domain events, for readers of the log."""
        return self.store.mapper

    @property
    def factory(self):
        return self.store.factory

    @property
    def database(self) -> str:
        return self.store.database

    def caught_up_view(self):
        """The read model, first caught up in this process (the command line, tests)."""
        return self.store.caught_up_view()

    def saved_position(self) -> int | None:
        return self.store.saved_position()

    def forget_saved_position(self) -> None:
        self.store.forget_saved_position()

    def close(self) -> None:
        self.store.close()


class Ledger(StoreBacked, Projects, Accounts, Issuing, Transfers, Retirements, Cancellations,
             RegistryImports, Reconciliation):
    """Kapok's carbon registry: projects, issuance, transfer, retirement, cancellation, and
    the projects it mirrors from another registry of record (imports, reconciliation)."""

    store_class = Store

    def __init__(self, env: dict | None = None, database: str | None = None,
                 store: Store | None = None, sale_side: SaleSide | None = None):
        self.store = store or self.store_class(env=env, database=database)
        self.sale_side = sale_side or NothingSold()
