"""The market side of the demo: benefit-sharing rules, COOPASER farms and listings.

Farm names and figures are illustrative (each 40 ha farm keeps 20 ha of primary forest and 20
ha of crops, at least 3 ha under sustainable practice); prices are illustrative too.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Callable

from market.application import Marketplace
from market.domain.errors import InvalidFarmError, NoRuleInForceError
from market.domain.listings import PriceTier
from market.domain.proceeds import FarmDetails

SHARES = {"farmers": Decimal(60), "aider-field-programme": Decimal(25), "ecosphere-fee": Decimal(15)}

FARMS = [  # code, family, forest kept (ha), agroforestry (ha)
    ("COOP-001", "Familia Quispe Huamán (demo)", "20", "6"),
    ("COOP-002", "Familia Mamani Condori (demo)", "20", "4"),
    ("COOP-003", "Familia Ccori Puma (demo)", "21", "3"),
    ("COOP-004", "Familia Huanca Flores (demo)", "19", "8"),
    ("COOP-005", "Familia Rojas Tito (demo)", "20", "5"),
]

LISTINGS = [  # project, vintage, price per tonne (USD), on offer, minimum, tiers
    ("VCS-1067", 2021, "14.00", 50_000, 1, [PriceTier(1_000, Decimal("12.50"))]),
    ("VCS-1067", 2022, "15.00", 40_000, 1, [PriceTier(1_000, Decimal("13.50"))]),
    ("KAP-AF-01", 2023, "24.00", 8_000, 1, [PriceTier(500, Decimal("22.00"))]),
]


def market_demo_steps(market: Marketplace) -> list[tuple[str, Callable[[], object]]]:
    steps: list[tuple[str, Callable[[], object]]] = []
    for project in ("VCS-1067", "KAP-AF-01"):
        steps.append((f"benefit rule {project}", lambda p=project: _rule(market, p)))
    for code, family, forest, agroforestry in FARMS:
        details = FarmDetails(family, Decimal(forest), Decimal(agroforestry))
        steps.append((f"farm {code}", lambda c=code, d=details: _farm(market, c, d)))
    for project, vintage, price, on_offer, minimum, tiers in LISTINGS:
        steps.append((f"listing {project} {vintage}", lambda p=project, v=vintage, pr=price,
                      o=on_offer, m=minimum, t=tiers: market.create_listing(
                          p, v, market.ledger.get_project(p).details.inventory_account,
                          Decimal(pr), "USD", o, m, t,
                          idempotency_key=f"demo:listing:{p}:{v}")))
    for label, project, vintage, tonnes, org, retire in SALES:
        steps.append((label, lambda p=project, v=vintage, t=tonnes, o=org, r=retire:
                      _sale(market, p, v, t, o, r)))
    steps.append(("payout to farm COOP-004", lambda: _payout(market)))
    return steps


def _payout(market: Marketplace) -> None:
    from market.domain.errors import PayoutAlreadyRecordedError

    try:  # part of what the farm is owed, paid by bank transfer (illustrative reference)
        market.record_payout("USD", "farmers", "COOP-004", 50_000, market.now().date(),
                             "DEMO-BCP-0001")
    except PayoutAlreadyRecordedError:
        pass


# Sales through the market (test payments), so the demo shows money routed to the farms.
SALES = [  # label, project, vintage, tonnes, buying organisation, retire at once for
    ("sale to Lima Logistics", "KAP-AF-01", 2023, 250, "lima-logistics", None),
    ("sale retired for Andes Coffee Roasters", "VCS-1067", 2022, 100, "andes-coffee-roasters",
     "Andes Coffee Roasters S.A.C."),
]


def _sale(market: Marketplace, project: str, vintage: int, tonnes: int, org: str,
          beneficiary: str | None) -> None:
    from datetime import date

    from ledger.domain.retirements import RetirementClaim
    from market.domain.listings import listing_id_for
    from market.domain.orders import RESERVED

    claim = None if beneficiary is None else RetirementClaim(
        beneficiary=beneficiary, reason="Voluntary climate contribution",
        details="coffee shipments 2025 (demo)", period_start=date(2025, 1, 1),
        period_end=date(2025, 12, 31))
    listing = str(listing_id_for(f"demo:listing:{project}:{vintage}"))
    order = market.place_order(listing, tonnes, org, f"org-{org}", retirement=claim,
                               idempotency_key=f"demo:order:{org}:{project}:{vintage}")
    if market.get_order(order["order_id"]).state == RESERVED:
        market.pay_offline(order["order_id"])


def _rule(market: Marketplace, project: str) -> None:
    try:
        market.benefit_rule(project)
    except NoRuleInForceError:  # no rule yet: the demo's first version
        market.set_benefit_rule(project, SHARES)


def _farm(market: Marketplace, code: str, details: FarmDetails) -> None:
    try:
        market.register_farm("KAP-AF-01", code, details, idempotency_key=f"demo:farm:{code}")
    except InvalidFarmError:
        pass  # registered earlier without the demo's key
