"""Where modules that name stored events' classes lived before: events and snapshots keep
the topic (``module:Class``) of the class that wrote them, so a moved module is registered
under its old name and old records still load."""

from __future__ import annotations

import importlib

from eventsourcing.utils import register_topic

LEDGER_MOVES = {
    "ledger.accounts": "ledger.domain.accounts",
    "ledger.projects": "ledger.domain.projects",
    "ledger.issuance": "ledger.domain.issuance",
    "ledger.retirements": "ledger.domain.retirements",
    "ledger.serials": "ledger.domain.serials",
    "ledger.commands": "ledger.domain.commands",
}


def register_moved_modules(moves: dict[str, str]) -> None:
    """Makes topics of each old module name resolve in the module now holding its classes."""
    for old, new in moves.items():
        register_topic(old, importlib.import_module(new))
