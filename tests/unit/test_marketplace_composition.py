"""The market is composed with the ledger: the registry's use cases are the ledger's alone."""

from __future__ import annotations

from ledger.application import Ledger, StoreBacked
from market.application import Marketplace


def registry_use_cases() -> set[str]:
    return {name for name in dir(Ledger) if not name.startswith("_")} - set(dir(StoreBacked))


def test_the_marketplace_is_not_a_ledger():
    assert not issubclass(Marketplace, Ledger)


def test_the_registrys_use_cases_are_reached_through_the_marketplaces_ledger_only():
    assert {"retire", "get_account", "issue"} <= registry_use_cases()
    assert registry_use_cases() & set(dir(Marketplace)) == set()


def test_the_marketplace_offers_the_readers_what_the_ledger_does():
    assert issubclass(Marketplace, StoreBacked) and issubclass(Ledger, StoreBacked)
