"""Small builders for tests: a project, accounts and issued credits in a few lines."""

from __future__ import annotations

import contextlib
from decimal import Decimal

from ledger.application import Ledger
from ledger.domain.projects import ProjectDetails, Vintage
from ledger.domain.retirements import RetirementClaim
from market.domain.orders import Order

INVENTORY = "ecosphere-inventory"


def project_details(registry_id: str = "VCS-1067", buffer_percent: str = "15", **changes) -> ProjectDetails:
    values = dict(
        registry_id=registry_id, name=f"Test project {registry_id}", proponent="AIDER",
        country="PE", region="Madre de Dios", project_type="REDD+", methodology="VM0007",
        area_ha=Decimal("573299"), sdgs=(13, 15), labels=("CCB",),
        buffer_percent=Decimal(buffer_percent), inventory_account=INVENTORY,
    )
    values.update(changes)
    return ProjectDetails(**values)


def ledger_with_project(ledger: Ledger, registry_id: str = "VCS-1067",
                        vintages=(2019, 2020, 2021), buffer_percent: str = "15",
                        accounts=("acme", "globex")) -> Ledger:
    """A ledger with one project, its vintages, the inventory and some buyer accounts."""
    ledger.register_project(project_details(registry_id, buffer_percent))
    for year in vintages:
        ledger.add_vintage(registry_id, Vintage(year, ("CCB",)))
    ledger.ensure_account(INVENTORY, "inventory", "Ecosphere+")
    for name in accounts:
        ledger.ensure_account(name, "holding", name.title())
    return ledger


def claim(beneficiary: str = "ACME S.A.C.", reason: str = "Environmental Benefit") -> RetirementClaim:
    return RetirementClaim(beneficiary=beneficiary, reason=reason)


@contextlib.contextmanager
def escrows_named_as_before():
    """Orders reserved inside get an escrow account named ``escrow-<order id>``, as every
    order did before escrow names became digests: stores upgraded since still hold them."""
    import pytest  # a development extra: the packaged testbed imports without it

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Order, "escrow_name_of",
                      staticmethod(lambda order_id: f"escrow-{order_id.lower()}"))
        yield
