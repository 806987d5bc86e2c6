"""The JSON API under /api/v1: tokens, pages, orders through to holdings, retirements, the
audit, and refusals in the site's one error format."""

from __future__ import annotations

import pytest

from ledger.audit.keys import SigningKey, generate_key, signing_key_file
from ledger.audit.log import AuditLog
from market.demo import SALES
from tests.web.api_calls import ERROR_KEYS, assert_error, bearer, first_listing, place_order
from tests.web.conftest import ORG_A, ORG_B


# --- public reads ----------------------------------------------------------------------------


def test_projects_carry_their_vintages_labels_and_buffer_share(anonymous):
    body = anonymous.get("/api/v1/projects/VCS-1067").get_json()
    assert body["buffer_percent"] == "10"
    assert "CCB" in body["labels"]
    assert [v["year"] for v in body["vintages"]] == [2019, 2020, 2021, 2022, 2023]
    assert_error(anonymous.get("/api/v1/projects/NO-SUCH"), 404)


def test_listings_filter_by_project_and_vintage_and_price_as_strings(anonymous):
    items = anonymous.get("/api/v1/listings?project=KAP-AF-01&vintage=2023").get_json()["items"]
    assert [(i["project_registry_id"], i["vintage_year"]) for i in items] == [("KAP-AF-01", 2023)]
    assert items[0]["price_per_tonne"] == "24.00"
    assert items[0]["tiers"] == [{"min_tonnes": 500, "price_per_tonne": "22.00"}]
    one = anonymous.get(f"/api/v1/listings/{items[0]['listing_id']}").get_json()
    assert one["listing_id"] == items[0]["listing_id"]
    assert anonymous.get("/api/v1/listings?vintage=1800").status_code == 422
    assert_error(anonymous.get("/api/v1/listings/not-a-listing"), 404)


@pytest.mark.parametrize("path, role", [
    ("/api/v1/projects", None),
    ("/api/v1/listings", None),
    ("/api/v1/retirements", None),
    ("/api/v1/orders", "operator"),
    ("/api/v1/holdings", "operator"),
    ("/api/v1/audit/events", "auditor"),
])
def test_every_list_is_paged_with_its_metadata(anonymous, as_role, path, role):
    get = as_role(role).get if role else anonymous.get
    buyer = as_role("buyer")
    if path == "/api/v1/orders":  # the demo has no orders yet: place two
        for _ in range(2):
            assert place_order(buyer, first_listing(anonymous)["listing_id"]).status_code == 201
    if path == "/api/v1/retirements":  # the demo has one retirement: add a second
        assert buyer.post(path, json={"tonnes": 1, "beneficiary": "Andes",
                                      "reason": "Other"}).status_code == 201
    whole = get(f"{path}?page_size=100").get_json()
    total = whole["pagination"]["total"]
    assert total >= 2 and len(whole["items"]) == min(total, 100)
    second = get(f"{path}?page=2&page_size=1").get_json()
    assert len(second["items"]) == 1
    assert second["items"][0] == whole["items"][1]
    assert second["pagination"].items() >= {"page": 2, "page_size": 1, "total": total,
                                            "previous_page": 1, "first_page": 1}.items()
    assert get(f"{path}?page={total + 1}&page_size=1").get_json()["items"] == []
    for bad in ("page=0", "page_size=0", "page_size=101", "page=x", f"page={10**30}"):
        body = assert_error(get(f"{path}?{bad}"), 422)
        assert "query" in body["errors"]


def test_a_quote_by_tonnes_by_amount_and_by_emissions(anonymous):
    listing = first_listing(anonymous, "KAP-AF-01")
    by_tonnes = anonymous.post("/api/v1/quotes", json={
        "listing_id": listing["listing_id"], "tonnes": 10}).get_json()
    assert (by_tonnes["tonnes"], by_tonnes["unit_price"], by_tonnes["total_minor"],
            by_tonnes["total"], by_tonnes["currency"]) == (10, "24.00", 24000, "240.00", "USD")
    assert by_tonnes["expires_at"] > by_tonnes["created_at"]
    by_amount = anonymous.post("/api/v1/quotes", json={
        "listing_id": listing["listing_id"], "amount": "1,000.00", "currency": "USD"}).get_json()
    assert (by_amount["tonnes"], by_amount["total_minor"]) == (41, 98400)
    by_activities = anonymous.post("/api/v1/quotes", json={
        "listing_id": listing["listing_id"],
        "activities": [{"type": "electricity", "kwh": "20000", "country": "PE"}]}).get_json()
    assert by_activities["asked_by"] == "estimate" and by_activities["tonnes"] >= 1
    assert isinstance(by_activities["estimate_kg_co2e"], str)


# --- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize("tonnes", [-1, 0, 10**13, 1.5, "5", True, None])
def test_orders_refuse_tonnes_that_are_not_whole_positive_numbers(anonymous, as_role, tonnes):
    listing = first_listing(anonymous)
    body = assert_error(place_order(as_role("buyer"), listing["listing_id"], tonnes), 422)
    assert "tonnes" in body["errors"]["json"]


@pytest.mark.parametrize("request_body, field", [
    ({"listing_id": None, "tonnes": 5}, "listing_id"),
    ({"listing_id": "not-a-uuid", "tonnes": 5}, "listing_id"),
    ({"tonnes": 5, "amount": "10.00", "currency": "USD"}, "_schema"),
    ({}, "_schema"),
    ({"amount": "-5.00", "currency": "USD"}, "amount"),
    ({"amount": "0", "currency": "USD"}, "amount"),
    ({"amount": "12.345", "currency": "USD"}, "amount"),
    ({"amount": "1e9999", "currency": "USD"}, "amount"),
    ({"amount": "10.00"}, "currency"),
    ({"amount": "10.00", "currency": "XXX"}, "currency"),
    ({"activities": [{"type": "rocket", "kg": "1"}]}, "activities"),
    ({"activities": [{"type": "electricity", "kwh": "-4", "country": "PE"}]}, "activities"),
    ({"activities": [{"type": "electricity", "kwh": "4", "country": "ZZ"}]}, "activities"),
    ({"activities": []}, "activities"),
])
def test_quotes_name_the_field_that_is_wrong(anonymous, request_body, field):
    listing = first_listing(anonymous)
    body = {"listing_id": listing["listing_id"], **request_body}
    errors = assert_error(anonymous.post("/api/v1/quotes", json=body), 422)["errors"]["json"]
    assert field in errors


@pytest.mark.parametrize("data, content_type", [
    ("not json", "application/json"),
    ("[1, 2]", "application/json"),
    ('{"listing_id": {"$gt": ""}, "tonnes": 5}', "application/json"),
    ("tonnes=5", "application/x-www-form-urlencoded"),
    ('{"tonnes": 1e400}', "application/json"),
])
def test_garbage_is_refused_in_the_error_format_never_a_500(anonymous, as_role, data,
                                                          content_type):
    for path in ("/api/v1/quotes", "/api/v1/orders", "/api/v1/retirements"):
        response = as_role("buyer").post(path, data=data, content_type=content_type)
        assert 400 <= response.status_code < 500, (path, response.status_code)
        assert ERROR_KEYS <= set(response.get_json())


def test_quantities_the_listing_cannot_meet_are_refused_by_the_market(anonymous, as_role):
    listing = first_listing(anonymous)
    body = assert_error(place_order(as_role("buyer"), listing["listing_id"], 10**9), 409)
    assert "available" in body["message"]


# --- tokens and organisations --------------------------------------------------------------------


@pytest.mark.parametrize("method, path", [
    ("get", "/api/v1/orders"), ("post", "/api/v1/orders"), ("get", "/api/v1/holdings"),
    ("post", "/api/v1/retirements"), ("get", "/api/v1/audit/events"),
    ("get", "/api/v1/audit/tree-head"), ("get", "/api/v1/retirements/KAP-RET-X/certificate"),
])
def test_no_token_is_a_json_401(anonymous, method, path):
    response = getattr(anonymous, method)(path, json={"tonnes": -1})
    assert_error(response, 401)
    assert response.headers["WWW-Authenticate"].lower().startswith("bearer")
    bad = getattr(anonymous, method)(path, headers=bearer("kapok_forged"))
    assert_error(bad, 401)


def test_a_browser_session_alone_does_not_act_through_the_api(buyer):
    # The API is exempt from CSRF tokens, so only a bearer token may authorise it.
    assert_error(buyer.get("/api/v1/orders"), 401)


def test_roles_are_kept_apart(as_role):
    assert_error(as_role("buyer").get("/api/v1/audit/events"), 403)
    assert_error(as_role("auditor").post("/api/v1/orders", json={}), 403)
    assert_error(as_role("operator").post("/api/v1/retirements", json={}), 403)


def demo_orders_of(org: str) -> int:
    """How many orders the demo placed and paid for ``org`` through the market."""
    return sum(1 for *_, buyer, _ in SALES if buyer == org)


def test_a_buyer_token_buys_pays_and_then_holds_the_serials(anonymous, as_role):
    buyer = as_role("buyer")
    listing = first_listing(anonymous, "KAP-AF-01")
    before = buyer.get("/api/v1/orders").get_json()["items"]
    assert len(before) == demo_orders_of(ORG_A)  # the demo's own orders for the organisation
    # Reserve 7 t for Andes Coffee Roasters: the serials go to escrow at the quoted price.
    order = place_order(buyer, listing["listing_id"], 7)
    assert order.status_code == 201, order.get_json()
    order = order.get_json()
    assert (order["state"], order["buyer_org"], order["buyer_account"]) == (
        "reserved", ORG_A, f"org-{ORG_A}")
    assert (order["unit_price"], order["total_minor"]) == ("24.00", 16800)
    # Pay with the demo's offline provider: fulfilled at once.
    paid = buyer.post(f"/api/v1/orders/{order['order_id']}/pay")
    assert paid.status_code == 200, paid.get_json()
    assert paid.get_json()["state"] == "fulfilled"
    assert_error(buyer.post(f"/api/v1/orders/{order['order_id']}/pay"), 409)  # once only
    # The order shows in the organisation's list, and the tonnes in its holdings.
    listed = buyer.get("/api/v1/orders").get_json()["items"]
    assert sorted(o["order_id"] for o in listed) == sorted(
        [order["order_id"]] + [o["order_id"] for o in before])
    assert {o["buyer_org"] for o in listed} == {ORG_A}
    holdings = buyer.get("/api/v1/holdings?project=KAP-AF-01&vintage=2023").get_json()["items"]
    assert [(h["account"], h["quantity"]) for h in holdings] == [(f"org-{ORG_A}", 7)]
    assert holdings[0]["blocks"][0]["serial"] in paid.get_json()["serials"]


def test_an_order_retired_at_once_is_in_the_public_registry(anonymous, as_role):
    buyer = as_role("buyer")
    listing = first_listing(anonymous)
    claim = {"beneficiary": "Andes Coffee Roasters", "reason": "Environmental Benefit"}
    order = place_order(buyer, listing["listing_id"], 3, retire=claim).get_json()
    assert order["retire"] is True
    fulfilled = buyer.post(f"/api/v1/orders/{order['order_id']}/pay").get_json()
    retirement_id = fulfilled["delivery_reference"]
    public = anonymous.get(f"/api/v1/retirements/{retirement_id}").get_json()
    assert (public["beneficiary"], public["quantity"]) == ("Andes Coffee Roasters", 3)
    registry = anonymous.get("/api/v1/retirements").get_json()["items"]
    assert registry[0]["retirement_id"] == retirement_id


def test_another_organisation_sees_none_of_it(anonymous, as_role):
    listing = first_listing(anonymous)
    order = place_order(as_role("buyer"), listing["listing_id"]).get_json()
    other = as_role("other_buyer")
    assert_error(other.get(f"/api/v1/orders/{order['order_id']}"), 404)
    assert_error(other.post(f"/api/v1/orders/{order['order_id']}/pay"), 404)
    # Its own list holds its own orders only (the demo's sale to it), never org A's.
    others = other.get("/api/v1/orders").get_json()["items"]
    assert len(others) == demo_orders_of(ORG_B) and {o["buyer_org"] for o in others} <= {ORG_B}
    assert order["order_id"] not in [o["order_id"] for o in others]
    assert_error(other.get(f"/api/v1/holdings?account=org-{ORG_A}"), 404)
    retired = as_role("buyer").post("/api/v1/retirements", json={
        "tonnes": 2, "beneficiary": "Andes", "reason": "Other"}).get_json()
    path = f"/api/v1/retirements/{retired['retirement_id']}/certificate"
    assert_error(other.get(path), 404)
    # The operator sees every organisation's orders.
    everything = as_role("operator").get("/api/v1/orders").get_json()["items"]
    assert order["order_id"] in [o["order_id"] for o in everything]
    assert as_role("operator").get(f"/api/v1/holdings?account=org-{ORG_B}").status_code == 200


def test_a_buyer_retires_from_its_holdings_and_gets_the_certificate(as_role):
    buyer = as_role("buyer")
    before = buyer.get("/api/v1/holdings").get_json()["items"]
    held = sum(row["quantity"] for row in before)
    response = buyer.post("/api/v1/retirements", json={
        "tonnes": 5, "beneficiary": "Andes Coffee Roasters S.A.C.",
        "reason": "Corporate Emissions Inventory Accounting",
        "period_start": "2025-01-01", "period_end": "2025-12-31"})
    assert response.status_code == 201, response.get_json()
    retirement = response.get_json()
    assert retirement["quantity"] == 5 and retirement["period_end"] == "2025-12-31"
    after = buyer.get("/api/v1/holdings").get_json()["items"]
    assert sum(row["quantity"] for row in after) == held - 5
    pdf = buyer.get(retirement["certificate_url"])
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    assert pdf.data.startswith(b"%PDF")
    # More than the organisation holds, or a period that ends before it starts: refused.
    assert_error(buyer.post("/api/v1/retirements", json={
        "tonnes": 10**6, "beneficiary": "x", "reason": "Other"}), 409)
    body = assert_error(buyer.post("/api/v1/retirements", json={
        "tonnes": 1, "beneficiary": " ", "reason": "Other", "period_start": "2025-02-01",
        "period_end": "2025-01-01"}), 422)
    assert "period_end" in body["errors"]["json"] or "beneficiary" in body["errors"]["json"]


# --- audit ----------------------------------------------------------------------------------------


@pytest.fixture
def followed_log(market):
    """The audit log followed to the end of the store, signed with this test's key."""
    path = signing_key_file()
    generate_key(path)
    return AuditLog(market).follow(SigningKey.load(path))


def test_an_auditor_token_reads_events_and_the_signed_tree_head(as_role, followed_log):
    auditor = as_role("auditor")
    head = auditor.get("/api/v1/audit/tree-head")
    assert head.status_code == 200
    assert head.get_json()["tree_size"] == followed_log.tree_size
    assert head.get_json()["root_hash"] == followed_log.root_hash.hex()
    assert "PUBLIC KEY" in head.get_json()["public_key"]
    events = auditor.get("/api/v1/audit/events?page_size=5").get_json()
    assert [e["position"] for e in events["items"]] == [1, 2, 3, 4, 5]
    assert events["pagination"]["total"] == followed_log.tree_size
    topic = events["items"][0]["topic"]
    same = auditor.get(f"/api/v1/audit/events?topic={topic}&page_size=100").get_json()
    assert {e["topic"] for e in same["items"]} == {topic}
    window = auditor.get("/api/v1/audit/events?from_position=10&to_position=12").get_json()
    assert [e["position"] for e in window["items"]] == [10, 11, 12]
    assert window["pagination"]["total"] == 3


def test_an_auditor_proves_a_retirement_and_verifies_the_store(as_role, market, followed_log):
    auditor = as_role("auditor")
    retirement_id = market.caught_up_view().retirements()[0]["retirement_id"]
    proof = auditor.get(f"/api/v1/audit/retirements/{retirement_id}/proof").get_json()
    assert proof["kind"] == "kapok-inclusion-proof-v1"
    assert proof["tree_head"]["tree_size"] == followed_log.tree_size
    report = auditor.get("/api/v1/audit/verify").get_json()
    assert (report["ok"], report["problem_count"], report["events"]) == (
        True, 0, followed_log.tree_size)
    assert_error(auditor.get("/api/v1/audit/retirements/KAP-RET-NONE/proof"), 404)


@pytest.mark.parametrize("role", ["buyer", "auditor", "operator"])
def test_every_token_holder_gets_the_head_and_proof_anyone_gets(as_role, anonymous, market,
                                                                 followed_log, role):
    retirement_id = market.caught_up_view().retirements()[0]["retirement_id"]
    client = as_role(role)
    for api, public in [("/api/v1/audit/tree-head", "/audit/tree-head"),
                        (f"/api/v1/audit/retirements/{retirement_id}/proof",
                         f"/audit/proofs/{retirement_id}.json")]:
        answer = client.get(api)
        assert answer.status_code == 200, answer.get_data(as_text=True)
        assert answer.get_json() == anonymous.get(public).get_json()


def test_no_tree_head_before_the_follower_runs_is_a_404(as_role):
    assert_error(as_role("operator").get("/api/v1/audit/tree-head"), 404)


def test_a_paid_order_says_where_its_money_went_farm_by_farm(anonymous, as_role):
    buyer = as_role("buyer")
    listing = first_listing(anonymous, "KAP-AF-01")
    order = place_order(buyer, listing["listing_id"], 7).get_json()  # 7 t at USD 24.00
    # Not paid yet: nothing is booked, and the API says why.
    unpaid = assert_error(buyer.get(f"/api/v1/orders/{order['order_id']}/proceeds"), 404)
    assert "booked when its payment settles" in unpaid["message"]
    buyer.post(f"/api/v1/orders/{order['order_id']}/pay")

    proceeds = buyer.get(f"/api/v1/orders/{order['order_id']}/proceeds").get_json()
    assert (proceeds["total_minor"], proceeds["currency"], proceeds["refunded_on"]) == (
        16800, "USD", None)
    shares = {(row["recipient"], row["farm_code"]): (row["amount_minor"], row["amount"])
              for row in proceeds["allocations"]}
    # The demo's rule: 60% to the farmers, 25% to AIDER's field programme, 15% Ecosphere+'s
    # fee; the farmers' USD 100.80 by agroforestry hectares (6, 4, 3, 8 and 5 of 26), the
    # cents left over to the largest remainders.
    assert shares == {
        ("farmers", "COOP-001"): (2326, "23.26"), ("farmers", "COOP-002"): (1551, "15.51"),
        ("farmers", "COOP-003"): (1163, "11.63"), ("farmers", "COOP-004"): (3102, "31.02"),
        ("farmers", "COOP-005"): (1938, "19.38"),
        ("aider-field-programme", None): (4200, "42.00"), ("ecosphere-fee", None): (2520, "25.20"),
    }
    # Another organisation cannot see it; an operator can.
    assert_error(as_role("other_buyer").get(f"/api/v1/orders/{order['order_id']}/proceeds"), 404)
    assert as_role("operator").get(
        f"/api/v1/orders/{order['order_id']}/proceeds").get_json() == proceeds
