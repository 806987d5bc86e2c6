"""The public registry's queries read the same on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from ledger.demo import demo_steps
from ledger.read.public_registry import search_retirements, tonnes_by_month
from ledger.domain.retirements import RetirementClaim
from market.application import Marketplace

ANDES = "org-andes-coffee-roasters"


@pytest.fixture
def market(database_url):
    market = Marketplace(database=database_url)
    for _label, step in demo_steps(market.ledger):
        step()
    yield market
    market.close()


def ids(found: tuple[list[dict], int]) -> list[str]:
    return [row["retirement_id"] for row in found[0]]


def test_retirements_are_found_by_beneficiary_id_project_and_serial(market):
    demo = market.ledger.retire(ANDES, RetirementClaim("100% Café_Andino", "Other"), quantity=5)
    view = market.caught_up_view()
    first_serial = market.ledger.get_retirement(demo["retirement_id"]).blocks[0].first

    assert ids(search_retirements(view, "café_andino")) == [demo["retirement_id"]]
    assert ids(search_retirements(view, "100%")) == [demo["retirement_id"]]
    assert ids(search_retirements(view, "0% c")) == [demo["retirement_id"]]
    assert search_retirements(view, "%")[1] == 1  # a literal %, not a wildcard
    assert ids(search_retirements(view, demo["retirement_id"].lower())) == [demo["retirement_id"]]
    assert ids(search_retirements(view, str(first_serial + 4))) == [demo["retirement_id"]]
    assert search_retirements(view, str(first_serial + 5))[1] == 0
    assert search_retirements(view, "VCS-1067")[1] == 2
    assert search_retirements(view, "", project="KAP-AF-01")[1] == 0


def test_retirements_come_newest_first_a_page_at_a_time_with_their_project_vintages(market):
    made = [market.ledger.retire(ANDES, RetirementClaim(f"Buyer {n}", "Other"), quantity=1)
            for n in range(3)]
    view = market.caught_up_view()

    rows, total = search_retirements(view, limit=2, offset=0)
    rest, _ = search_retirements(view, limit=2, offset=2)

    assert total == 4
    assert [row["retirement_id"] for row in rows] == [made[2]["retirement_id"],
                                                      made[1]["retirement_id"]]
    assert len(rest) == 2 and rest[0]["retirement_id"] == made[0]["retirement_id"]
    assert rows[0]["projects"] == ["VCS-1067 2019"]


def test_tonnes_per_month_count_issued_sold_and_retired(market):
    series = tonnes_by_month(market.caught_up_view())

    # KAP-AF-01's issuances, and VCS-1067's blocks active at Verra when imported.
    assert sum(tonnes for _, tonnes in series["issued"]) == 53_000 + 213_900
    assert sum(tonnes for _, tonnes in series["sold"]) == 500
    assert sum(tonnes for _, tonnes in series["retired"]) == 120
    assert all(isinstance(tonnes, int) for rows in series.values() for _, tonnes in rows)


def test_a_retirement_verra_refused_no_longer_counts_as_retired(market):
    pending = market.ledger.retire(ANDES, RetirementClaim("Andes", "Other"), quantity=30)
    market.ledger.fail_registry_retirement(pending["retirement_id"], "refused at Verra")

    series = tonnes_by_month(market.caught_up_view())

    assert sum(tonnes for _, tonnes in series["retired"]) == 120
