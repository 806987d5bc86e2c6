"""The Tambopata demo data: AIDER's two projects, their vintages, accounts and a first sale.

Figures come from the project's public description (../shared/seed and REGISTRY.md); issued
quantities, buyers and the sample retirement are illustrative. The REDD+ project is mirrored
from Verra, its registry of record: its blocks come from an export in Verra's format
(``demo_data/vcs1067_export.csv``: the format is real, its rows illustrative). The
agroforestry project is Kapok's own. Every step is safe to repeat, so seeding twice changes
nothing.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Callable

from ledger.application import Ledger
from ledger.domain.errors import DuplicateError
from ledger.domain.projects import VERRA, ProjectDetails, Vintage
from ledger.domain.retirements import RetirementClaim
from ledger.usecases.registry_imports import VERRA_HOLDING

INVENTORY = "ecosphere-inventory"
VERRA_EXPORT = Path(__file__).parent / "demo_data" / "vcs1067_export.csv"

REDD = ProjectDetails(
    registry_id="VCS-1067",
    name=(
        "Reduction of Deforestation and Degradation in Tambopata National Reserve and "
        "Bahuaja-Sonene National Park within the area of Madre de Dios Region - Peru"
    ),
    proponent="AIDER",
    country="PE",
    region="Madre de Dios",
    project_type="REDD+",
    methodology="VM0007 REDD+ Methodology Framework (illustrative)",
    area_ha=Decimal("573299"),
    sdgs=(1, 8, 13, 15),
    labels=("CCB",),
    latitude=Decimal("-12.96"),
    longitude=Decimal("-69.21"),
    buffer_percent=Decimal("10"),
    inventory_account=VERRA_HOLDING,
    registry=VERRA,
    description=(
        "Protects a 570,000 ha forest around Tambopata National Reserve from illegal mining "
        "and the advance of papaya monoculture. Validated in 2012 under VCS v3 and CCB; listed "
        "by a public marketplace as VCS 1067 (demo data, illustrative)."
    ),
)

AGROFORESTRY = ProjectDetails(
    registry_id="KAP-AF-01",
    name="COOPASER deforestation-free cocoa agroforestry, Tambopata buffer zone",
    proponent="AIDER",
    country="PE",
    region="Madre de Dios",
    project_type="Agroforestry",
    methodology="VM0047 Afforestation, Reforestation and Revegetation (illustrative)",
    area_ha=Decimal("1300"),
    sdgs=(1, 2, 8, 13, 15),
    labels=("CCB",),
    latitude=Decimal("-12.60"),
    longitude=Decimal("-69.19"),
    buffer_percent=Decimal("15"),
    inventory_account=INVENTORY,
    description=(
        "About 350 farmers of the COOPASER cooperative (21 in 2014) move from papaya "
        "monoculture to deforestation-free cocoa: each 40 ha farm keeps 20 ha of primary "
        "forest and 20 ha of crops, at least 3 ha under sustainable practice. 1,300 ha "
        "restored and conserved so far."
    ),
)

VINTAGES = {  # Kapok's own issuances; VCS-1067's blocks come from Verra's export
    "KAP-AF-01": {2021: 8_000, 2022: 12_000, 2023: 15_000, 2024: 18_000},
}

ACCOUNTS = (
    (INVENTORY, "inventory", "Ecosphere+"),
    ("org-andes-coffee-roasters", "holding", "Andes Coffee Roasters S.A.C. (demo buyer)"),
    ("org-lima-logistics", "holding", "Lima Logistics Corp. (demo buyer)"),
)


def demo_steps(ledger: Ledger) -> list[tuple[str, Callable[[], object]]]:
    """The seeding steps, each safe to repeat, with a label for progress output."""
    steps: list[tuple[str, Callable[[], object]]] = []
    for details in (REDD, AGROFORESTRY):
        steps.append((f"project {details.registry_id}", lambda d=details: _register(ledger, d)))
    steps.append(("VCS-1067 blocks from Verra's export", lambda: _import_verra(ledger)))
    for name, kind, owner in ACCOUNTS:
        steps.append((f"account {name}", lambda n=name, k=kind, o=owner: ledger.ensure_account(n, k, o)))
    for project, vintages in VINTAGES.items():
        for year, quantity in vintages.items():
            key = f"demo:issue:{project}:{year}"
            steps.append((f"vintage {project} {year}", lambda p=project, y=year: ledger.add_vintage(
                p, Vintage(y, ("CCB",)), idempotency_key=f"demo:vintage:{p}:{y}")))
            steps.append((f"issue {quantity:,} t {project} {year}", lambda p=project, y=year, q=quantity, k=key:
                          ledger.issue(p, y, q, idempotency_key=k)))
    steps.append(("sale to Andes Coffee Roasters", lambda: ledger.transfer(
        VERRA_HOLDING, "org-andes-coffee-roasters", quantity=500,
        idempotency_key="demo:transfer:andes")))
    steps.append(("retirement for Andes Coffee Roasters", lambda: _retire_for_andes(ledger)))
    steps.append(("Verra's confirmation of that retirement", lambda: _confirm_at_verra(ledger)))
    return steps


def _retire_for_andes(ledger: Ledger) -> dict:
    return ledger.retire(
        "org-andes-coffee-roasters",
        RetirementClaim(
            beneficiary="Andes Coffee Roasters S.A.C.",
            reason="Corporate Emissions Inventory Accounting",
            details="2025 roasting operations (demo)",
            period_start=date(2025, 1, 1), period_end=date(2025, 12, 31),
        ),
        quantity=120, idempotency_key="demo:retire:andes")


def _confirm_at_verra(ledger: Ledger) -> None:
    """Records that Verra retired the demo retirement's serials (as Ecosphere+ would, once
    it has retired them in its Verra account)."""
    retirement_id = _retire_for_andes(ledger)["retirement_id"]  # the first run's result
    retirement = ledger.get_retirement(retirement_id)
    if retirement.pending:
        ledger.confirm_registry_retirement(
            retirement_id, [block.serial for block in retirement.blocks], date.today())


def _import_verra(ledger: Ledger) -> None:
    from ledger.adapters.verra_export import read_export

    if not ledger.get_project(REDD.registry_id).details.mirrored:
        return  # a store seeded before VCS-1067 was mirrored keeps its own issuances

    def rows():
        with VERRA_EXPORT.open(encoding="utf-8", newline="") as stream:
            yield from read_export(stream, 1067)

    ledger.import_registry_export(rows, REDD.registry_id)


def _register(ledger: Ledger, details: ProjectDetails) -> None:
    try:
        ledger.register_project(details, idempotency_key=f"demo:project:{details.registry_id}")
    except DuplicateError:
        pass  # registered earlier without the demo's key: nothing to do
