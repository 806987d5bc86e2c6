"""The operator console: what operators can do through it, what it refuses, and who may not
use it at all."""

from __future__ import annotations

import re

import csv
import io
from decimal import Decimal

import pytest

from market.domain.listings import PriceTier
from tests.conftest import settled
from tests.web.conftest import post_form

INVENTORY = "ecosphere-inventory"
NEW_PROJECT = {
    "key": "test:project", "registry_id": "KAP-TEST-01", "name": "Test cocoa agroforestry",
    "proponent": "AIDER", "country": "PE", "region": "Madre de Dios",
    "project_type": "Agroforestry", "methodology": "VM0047 (test)", "area_ha": "250.5",
    "sdgs": "1, 13", "labels": "CCB", "latitude": "-12.6", "longitude": "-69.19",
    "buffer_percent": "20", "inventory_account": INVENTORY, "description": "",
}


def held(market, account: str, project: str, vintage: int) -> int:
    return sum(row["quantity"] for row in market.caught_up_view().balances(
        account=account, project=project, vintage=vintage, status="held"))


def demo_listing(market, project: str = "KAP-AF-01"):
    return next(listing for listing in market.listings()
                if listing.project_registry_id == project)


def paid_order(market, tonnes: int = 10, project: str = "KAP-AF-01") -> str:
    """A fulfilled order of the demo buyer, so the farms are owed their share."""
    order = market.place_order(str(demo_listing(market, project).id), tonnes,
                               "andes-coffee-roasters", "org-andes-coffee-roasters")
    market.pay_offline(order["order_id"])
    return order["order_id"]


def new_person(email: str, role: str) -> dict:
    return {"email": email, "name": "Someone", "role": role, "password": "a long passphrase",
            "confirm": "a long passphrase"}


def listing_terms(market, **changes) -> dict:
    return {"key": "test:listing", "project": "KAP-AF-01", "vintage": "2024",
            "inventory_account": INVENTORY, "price_per_tonne": "18.50", "currency": "USD",
            "on_offer": "500", "minimum_quantity": "1", "tiers": "100 17.00", **changes}


def test_an_operator_registers_a_project_adds_a_vintage_issues_and_lists_its_credits(
        operator, market):
    # The project, with a 20 % buffer share.
    response = post_form(operator, "/console/projects/new", NEW_PROJECT)
    assert response.status_code == 302, response.get_data(as_text=True)
    details = market.ledger.get_project("KAP-TEST-01").details
    assert (details.area_ha, details.buffer_percent, details.sdgs, details.latitude) == (
        Decimal("250.5"), Decimal("20"), (1, 13), Decimal("-12.6"))

    # A vintage with its labels.
    response = post_form(operator, "/console/projects/KAP-TEST-01/vintages", {
        "key": "test:vintage", "year": "2024", "vintage_labels": "CCB, CCP, SDG 13",
        "corresponding_adjustment": "Not Required"})
    assert response.status_code == 302
    assert market.ledger.get_project("KAP-TEST-01").vintages[2024].labels == ("CCB", "CCP", "SDG 13")

    # Issuing 1,000 t: 200 t to the buffer pool, 800 t into the inventory.
    before = held(market, INVENTORY, "KAP-TEST-01", 2024)
    response = post_form(operator, "/console/projects/KAP-TEST-01/issuances",
                         {"key": "test:issue", "vintage": "2024", "quantity": "1000"})
    assert response.status_code == 302
    assert held(market, INVENTORY, "KAP-TEST-01", 2024) == before + 800
    assert sum(row["quantity"] for row in market.caught_up_view().balances(
        project="KAP-TEST-01", status="buffer")) == 200
    page = operator.get("/console/projects/KAP-TEST-01").get_data(as_text=True)
    assert "-KAPTEST01-2024-PE" in page and "SDG 13" in page

    # Listing 500 of them, with a volume tier.
    response = post_form(operator, "/console/listings/new", listing_terms(
        market, project="KAP-TEST-01", key="test:listing-new"))
    assert response.status_code == 302
    listing = demo_listing(market, "KAP-TEST-01")
    assert (listing.vintage_year, listing.price_per_tonne, listing.currency, listing.on_offer,
            listing.tiers) == (2024, Decimal("18.50"), "USD", 500,
                               (PriceTier(100, Decimal("17.00")),))


def test_submitting_an_issuance_twice_issues_once(operator, market):
    form = {"key": "test:issue-once", "vintage": "2024", "quantity": "300"}
    before = held(market, INVENTORY, "KAP-AF-01", 2024)
    for _ in range(2):
        assert post_form(operator, "/console/projects/KAP-AF-01/issuances", form).status_code == 302
    assert held(market, INVENTORY, "KAP-AF-01", 2024) == before + 255  # 15 % buffer


def test_pausing_a_listing_takes_it_off_sale_and_resuming_puts_it_back(operator, market):
    listing_id = str(demo_listing(market).id)
    response = post_form(operator, f"/console/listings/{listing_id}/status", {"status": "paused"})
    assert response.status_code == 302
    assert market.get_listing(listing_id).status == "paused"
    assert post_form(operator, f"/console/listings/{listing_id}/status",
                     {"status": "active"}).status_code == 302
    assert market.get_listing(listing_id).status == "active"


def test_a_closed_listing_cannot_be_resumed(operator, market):
    listing_id = str(demo_listing(market).id)
    post_form(operator, f"/console/listings/{listing_id}/status", {"status": "closed"})
    response = post_form(operator, f"/console/listings/{listing_id}/status", {"status": "active"})
    assert response.status_code == 400
    assert "cannot become active" in response.get_data(as_text=True)
    assert market.get_listing(listing_id).status == "closed"


def test_the_operator_changes_a_listings_offer_and_price(operator, market):
    listing_id = str(demo_listing(market).id)
    assert post_form(operator, f"/console/listings/{listing_id}/offer",
                     {"on_offer": "7000"}).status_code == 302
    assert post_form(operator, f"/console/listings/{listing_id}/price", {
        "price_per_tonne": "25.00", "minimum_quantity": "2", "tiers": ""}).status_code == 302
    listing = market.get_listing(listing_id)
    assert (listing.on_offer, listing.price_per_tonne, listing.minimum_quantity,
            listing.tiers) == (7000, Decimal("25.00"), 2, ())


def test_offering_more_than_the_inventory_holds_is_refused_and_changes_nothing(operator, market):
    listing_id = str(demo_listing(market).id)
    response = post_form(operator, f"/console/listings/{listing_id}/offer",
                         {"on_offer": "999999999"})
    assert response.status_code == 409
    assert "cannot offer" in response.get_data(as_text=True)
    assert market.get_listing(listing_id).on_offer == 8000


def test_a_payout_reduces_what_is_owed_to_the_farm(operator, market):
    paid_order(market)
    owed = market.proceeds("USD").owed("farmers", "COOP-001")
    assert owed > 100
    response = post_form(operator, "/console/payouts", {
        "currency": "USD", "recipient": "farmers", "farm_code": "COOP-001", "amount": "1.00",
        "paid_on": "2026-01-15", "reference": "BCP-000123"})
    assert response.status_code == 302, response.get_data(as_text=True)
    assert market.proceeds("USD").owed("farmers", "COOP-001") == owed - 100
    page = operator.get("/console/payouts").get_data(as_text=True)
    assert "COOP-001" in page and "USD 1.00" in page


def test_an_operator_sees_where_a_paid_orders_money_went_and_a_reserved_one_has_none(operator,
                                                                                   market):
    order_id = paid_order(market)  # 10 t of KAP-AF-01 at USD 24.00
    page = operator.get(f"/console/orders/{order_id}").get_data(as_text=True)
    section = page[page.index("Where the payment went"):]
    farms = re.findall(r"<td>farmers</td><td>(COOP-\d+)</td>\s*<td class=\"num\">([^<]+)</td>",
                       section)
    assert len(farms) == 5 and "USD 240.00" in section  # every farm, and the total
    assert "USD 60.00" in section and "USD 36.00" in section  # AIDER 25%, Ecosphere+ 15%

    reserved = market.place_order(str(demo_listing(market).id), 3, "andes-coffee-roasters",
                                  "org-andes-coffee-roasters")["order_id"]
    page = operator.get(f"/console/orders/{reserved}").get_data(as_text=True)
    assert "Where the payment went" not in page


def test_a_payees_pay_link_fills_in_the_payout_form_with_what_is_owed(operator, market):
    paid_order(market)
    owed = market.proceeds("USD").owed("farmers", "COOP-002")
    page = operator.get("/console/payouts").get_data(as_text=True)
    links = re.findall(r'href="(/console/payouts\?[^"]+)">Pay</a>', page)
    link = next(href.replace("&amp;", "&") for href in links if "farm_code=COOP-002" in href)

    form = operator.get(link).get_data(as_text=True)
    for name, value in (("recipient", "farmers"), ("farm_code", "COOP-002"),
                        ("amount", f"{owed // 100}.{owed % 100:02d}")):
        assert re.search(rf'name="{name}"[^>]*value="{re.escape(value)}"', form), name
    # Submitting it as filled in (with the bank's date and reference) pays the farm in full.
    response = post_form(operator, "/console/payouts", {
        "currency": "USD", "recipient": "farmers", "farm_code": "COOP-002",
        "amount": f"{owed // 100}.{owed % 100:02d}", "paid_on": "2026-01-15",
        "reference": "BCP-000124"})
    assert response.status_code == 302
    assert market.proceeds("USD").owed("farmers", "COOP-002") == 0


def test_paying_out_more_than_is_owed_is_refused(operator, market):
    paid_order(market)
    owed = market.proceeds("USD").owed("farmers", "COOP-001")
    response = post_form(operator, "/console/payouts", {
        "currency": "USD", "recipient": "farmers", "farm_code": "COOP-001",
        "amount": "100000.00", "paid_on": "2026-01-15", "reference": "BCP-1"})
    assert response.status_code == 409
    assert "is owed" in response.get_data(as_text=True)
    assert market.proceeds("USD").owed("farmers", "COOP-001") == owed


def test_a_rule_whose_shares_do_not_sum_to_100_is_refused_and_nothing_changes(operator, market):
    versions = list(market.benefit_rule("KAP-AF-01").versions)
    response = post_form(operator, "/console/rules", {
        "project": "KAP-AF-01", "shares": "farmers 60\naider-field-programme 30"})
    assert response.status_code == 400
    assert "not exactly 100" in response.get_data(as_text=True)
    assert market.benefit_rule("KAP-AF-01").versions == versions


def test_a_new_rule_version_may_start_in_the_future(operator, market):
    response = post_form(operator, "/console/rules", {
        "project": "KAP-AF-01", "effective_from": "2099-01-01T00:00",
        "shares": "farmers 70\naider-field-programme 20\necosphere-fee 10"})
    assert response.status_code == 302
    latest = market.benefit_rule("KAP-AF-01").versions[-1]
    assert (latest.version, latest.effective_from.year, latest.shares["farmers"]) == (
        2, 2099, Decimal(70))


BAD_WHOLE = ["-5", "0", "99999999999999999999", "ten", "1.5", "1e3", " "]
BAD_PRICE = ["-1", "0", "1e3", "abc", "1.1234567", "9999999999", "NaN", "Infinity", "1,5"]
BAD_AMOUNT = ["-1", "0", "0.00", "12.345", "abc", "1e20", "99999999999999999", "NaN"]


@pytest.mark.parametrize("quantity", BAD_WHOLE)
def test_issuing_a_bad_quantity_is_refused_and_issues_nothing(operator, market, quantity):
    before = len(market.caught_up_view().issuances())
    response = post_form(operator, "/console/projects/KAP-AF-01/issuances",
                         {"key": "test:bad", "vintage": "2024", "quantity": quantity})
    assert response.status_code == 400
    assert len(market.caught_up_view().issuances()) == before


@pytest.mark.parametrize("field, value", [("price_per_tonne", v) for v in BAD_PRICE]
                         + [("on_offer", v) for v in BAD_WHOLE]
                         + [("minimum_quantity", v) for v in BAD_WHOLE]
                         + [("tiers", "100 -1"), ("tiers", "100"), ("tiers", "x 12.00")])
def test_listing_with_a_bad_number_is_refused_and_lists_nothing(operator, market, field, value):
    before = len(market.listings())
    response = post_form(operator, "/console/listings/new", listing_terms(market, **{field: value}))
    assert response.status_code == 400
    assert 'class="error"' in response.get_data(as_text=True)
    assert len(market.listings()) == before


@pytest.mark.parametrize("amount", BAD_AMOUNT)
def test_a_payout_of_a_bad_amount_is_refused_and_records_nothing(operator, market, amount):
    paid_order(market)
    journal = market.proceeds("USD").version
    response = post_form(operator, "/console/payouts", {
        "currency": "USD", "recipient": "farmers", "farm_code": "COOP-001", "amount": amount,
        "paid_on": "2026-01-15", "reference": "BCP-2"})
    assert response.status_code == 400
    assert market.proceeds("USD").version == journal


@pytest.mark.parametrize("field, value", [("forest_ha", "-1"), ("agroforestry_ha", "abc"),
                                          ("weight", "1.1234567"), ("forest_ha", "1e3"),
                                          ("agroforestry_ha", "999999999999"),
                                          ("farm_code", "COOP 9")])
def test_a_farm_with_a_bad_field_is_refused_and_not_registered(operator, market, field, value):
    form = {"key": "test:farm", "project": "KAP-AF-01", "farm_code": "COOP-009",
            "farmer_name": "Familia Test", "forest_ha": "20", "agroforestry_ha": "4.5",
            "weight": "", field: value}
    response = post_form(operator, "/console/farms", form)
    assert response.status_code == 400
    assert "COOP-009" not in [farm.farm_code for farm in market.farms("KAP-AF-01")]


def test_a_farm_is_registered_with_an_exact_weight(operator, market):
    response = post_form(operator, "/console/farms", {
        "key": "test:farm-ok", "project": "KAP-AF-01", "farm_code": "COOP-009",
        "farmer_name": "Familia Test", "forest_ha": "20", "agroforestry_ha": "4.5",
        "weight": "2.25"})
    assert response.status_code == 302
    farm = next(f for f in market.farms("KAP-AF-01") if f.farm_code == "COOP-009")
    assert (farm.details.agroforestry_ha, farm.share_weight) == (Decimal("4.5"), Decimal("2.25"))


def test_a_project_registered_twice_is_refused_with_the_registrys_message(operator, market):
    response = post_form(operator, "/console/projects/new",
                         {**NEW_PROJECT, "registry_id": "VCS-1067", "key": "test:again"})
    assert response.status_code == 400
    assert "already registered" in response.get_data(as_text=True)
    assert market.ledger.get_project("VCS-1067").details.project_type == "REDD+"


def test_the_statement_csv_neutralises_cells_that_would_run_as_formulas(operator, market):
    paid_order(market)
    reference = "=cmd|' /C calc'!A0"
    assert post_form(operator, "/console/payouts", {
        "currency": "USD", "recipient": "farmers", "farm_code": "COOP-001", "amount": "0.50",
        "paid_on": "2026-01-15", "reference": reference}).status_code == 302
    response = operator.get("/console/payouts/statement.csv?currency=USD&farm=COOP-001")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    payout = next(row for row in rows if row["kind"] == "payout")
    assert (payout["reference"], payout["paid_out"]) == ("'" + reference, "0.50")
    assert not any(cell.startswith(("=", "+", "@")) for row in rows for cell in row.values())


def test_the_operator_finds_an_order_and_cancels_its_reservation(operator, market):
    listing = demo_listing(market)
    order = market.place_order(str(listing.id), 5, "lima-logistics", "org-lima-logistics")
    settled(market)  # a buyer's order reaches the console once the worker has projected it
    page = operator.get("/console/orders?state=reserved&buyer=lima-logistics")
    assert order["order_id"] in page.get_data(as_text=True)
    assert order["order_id"] not in operator.get(
        "/console/orders?state=fulfilled").get_data(as_text=True)
    response = post_form(operator, f"/console/orders/{order['order_id']}/cancel",
                         {"reason": "buyer asked"})
    assert response.status_code == 302
    assert market.get_order(order["order_id"]).state == "cancelled"
    assert market.get_listing(str(listing.id)).reserved == 0


def test_the_operator_refunds_a_fulfilled_order_and_takes_the_credits_back(operator, market):
    order_id = paid_order(market, tonnes=10)
    inventory = held(market, INVENTORY, "KAP-AF-01", 2023)
    response = post_form(operator, f"/console/orders/{order_id}/refund",
                         {"reason": "duplicate purchase", "recover_credits": "y"})
    assert response.status_code == 302, response.get_data(as_text=True)
    assert market.get_order(order_id).state == "refunded"
    assert held(market, INVENTORY, "KAP-AF-01", 2023) == inventory + 10


def test_a_reserved_order_cannot_be_refunded(operator, market):
    order = market.place_order(str(demo_listing(market).id), 5, "lima-logistics",
                               "org-lima-logistics")
    response = post_form(operator, f"/console/orders/{order['order_id']}/refund",
                         {"reason": "oops"})
    assert response.status_code == 409
    assert market.get_order(order["order_id"]).state == "reserved"


def test_the_operator_adds_an_auditor(operator, identity):
    response = post_form(operator, "/console/users",
                         new_person("new.auditor@audit.example", "auditor"))
    assert response.status_code == 302
    assert identity.find("new.auditor@audit.example").role == "auditor"


def test_the_console_adds_no_buyers(operator, identity):
    response = post_form(operator, "/console/users", new_person("b@x.example", "buyer"))
    assert response.status_code == 400
    assert identity.find("b@x.example") is None


def test_the_dashboard_counts_what_the_ledger_holds(operator, market):
    market.place_order(str(demo_listing(market).id), 7, "lima-logistics", "org-lima-logistics")
    settled(market)
    page = operator.get("/console/").get_data(as_text=True)
    assert "<strong>1</strong> orders awaiting payment" in page
    assert "<strong>7</strong> t reserved" in page


def test_balances_are_filtered_and_paged(operator):
    page = operator.get("/console/balances?project=KAP-AF-01&status=buffer")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "buffer-pool" in text and "VCS-1067" not in text
    assert operator.get("/console/balances?vintage=abc").status_code == 400
    assert operator.get("/console/balances?page=0").status_code == 400


# --- who may use the console ---------------------------------------------------------------

def console_urls(app, market) -> list[tuple[str, str]]:
    """(method, path) of every console view, with real ids filled in."""
    values = {"registry_id": "KAP-AF-01", "listing_id": str(demo_listing(market).id),
              "order_id": "KAP-ORD-000000000000", "retirement_id": "KAP-RET-000000000000"}
    urls = []
    with app.test_request_context():
        from flask import url_for

        for rule in app.url_map.iter_rules():
            if rule.endpoint.startswith("console."):
                path = url_for(rule.endpoint, **{name: values[name] for name in rule.arguments})
                urls += [(method, path) for method in sorted(rule.methods & {"GET", "POST"})]
    assert len(urls) > 20
    return urls


@pytest.mark.parametrize("role", ["buyer", "auditor"])
def test_buyers_and_auditors_are_forbidden_every_console_page(request, app, market, role):
    client = request.getfixturevalue(role)
    for method, path in console_urls(app, market):
        if method == "GET":
            response = client.get(path)
        else:
            response = post_form(client, path, new_person("x@y.example", "operator"))
        assert response.status_code == 403, (method, path)


def test_buyers_cannot_create_operators(buyer, identity):
    response = post_form(buyer, "/console/users", new_person("evil@x.example", "operator"))
    assert response.status_code == 403
    assert identity.find("evil@x.example") is None


def test_anonymous_visitors_are_sent_to_log_in(app, market, anonymous):
    for method, path in console_urls(app, market):
        response = anonymous.get(path) if method == "GET" else post_form(anonymous, path, {})
        assert response.status_code == 302, (method, path)
        assert response.headers["Location"].startswith("/login"), (method, path)
