"""Builders of a project mirrored from Verra beside the demo, through the ledger's use cases:
VCS-3005 imported from tests/fixtures/verra/vcs3005_export.csv (30,000 t of vintage 2022 in
batch 19380, 2,000 t of them retired at Verra; 5,000 t of 2021 in batch 17110), part of it
delivered to the demo buyer, retired and pending at Verra; and Kapok's own credits retired
beside them."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from ledger.adapters.verra_export import read_export
from ledger.domain.retirements import RetirementClaim
from ledger.domain.serials import SerialRange

FIXTURES = Path(__file__).parent.parent / "fixtures" / "verra"
PROJECT = "VCS-3005"
HOLDING = "ecosphere-verra"  # where an import puts Verra's active blocks by default
INVENTORY = "ecosphere-inventory"  # the demo's stock of Kapok's own credits
BUYER_ACCOUNT = "org-andes-coffee-roasters"
TAIL_2022 = "VCS-VCU-1310-VER-CN-13-3005-01012022-31102022-0"
TAIL_2021 = "VCS-VCU-1310-VER-CN-13-3005-01012021-31122021-0"
# The first 2022 block, as the buyer retires it below.
RETIRED_SERIAL = f"19380-941382555-941382654-{TAIL_2022}"
VERRA_PAGE = "https://registry.verra.org/app/projectDetail/VCS/3005"
# The day Verra retired them, as tests record its confirmation: a week ago, never in the future.
CONFIRMED_ON = date.today() - timedelta(days=7)


def import_export(ledger, name: str = "vcs3005_export.csv") -> dict:
    path = FIXTURES / name

    def rows():
        with open(path, newline="", encoding="utf-8") as stream:
            yield from read_export(stream, 3005)

    return ledger.import_registry_export(rows, PROJECT)


def reconcile(ledger, name: str = "vcs3005_export_newer.csv") -> dict:
    path = FIXTURES / name

    def rows():
        with open(path, newline="", encoding="utf-8") as stream:
            yield from read_export(stream, 3005)

    return ledger.reconcile_registry(rows, PROJECT, source=name)


def claim(beneficiary: str = "Andes Coffee Roasters S.A.C.") -> RetirementClaim:
    return RetirementClaim(beneficiary=beneficiary, reason="Voluntary climate contribution",
                           details="roasting 2025 (test)", period_start=date(2025, 1, 1),
                           period_end=date(2025, 12, 31))


def pending_retirement(ledger, tonnes: int = 100) -> str:
    """VCS-3005 imported, ``tonnes`` of its 2022 vintage (from serial 941382555) delivered to
    the demo buyer and retired by it: the retirement's id, pending at Verra."""
    import_export(ledger)
    first = 941382555
    ledger.transfer(HOLDING, BUYER_ACCOUNT, serials=SerialRange(first, first + tonnes - 1))
    return ledger.retire(BUYER_ACCOUNT, claim(),
                         serials=SerialRange(first, first + tonnes - 1))["retirement_id"]


def native_holding(ledger, tonnes: int = 5) -> SerialRange:
    """``tonnes`` of Kapok's own credits (KAP-AF-01, issued by Kapok) moved from the demo's
    inventory to the demo buyer: their serials."""
    block = next(block for block in ledger.get_account(INVENTORY).blocks
                 if block.project == "KAP-AF-01" and block.quantity >= tonnes)
    serials = SerialRange(block.first, block.first + tonnes - 1)
    ledger.transfer(INVENTORY, BUYER_ACCOUNT, serials=serials)
    return serials


def native_retirement(ledger, tonnes: int = 5) -> str:
    """A retirement by the demo buyer of Kapok's own credits (final at once, no phase)."""
    return ledger.retire(BUYER_ACCOUNT, claim("Cocoa buyer"),
                         serials=native_holding(ledger, tonnes))["retirement_id"]
