"""The JSON API's view of projects mirrored from Verra: each project's registry of record,
Verra's serials on holdings and retirements, and each retirement's phase at Verra.

VCS-3005 is mirrored beside the demo (tests/web/mirrored.py)."""

from __future__ import annotations

import pytest

from ledger.domain.serials import SerialRange
from tests.conftest import settled
from tests.web.mirrored import (BUYER_ACCOUNT, CONFIRMED_ON, HOLDING, RETIRED_SERIAL, TAIL_2022,
                                VERRA_PAGE, import_export, native_holding, native_retirement,
                                pending_retirement)

PHASE_FIELDS = ("registry_phase", "registry_serials", "registry_date")


@pytest.fixture
def pending(market) -> str:
    retirement_id = pending_retirement(market.ledger)
    settled(market)
    return retirement_id


def test_projects_carry_their_registry_of_record_and_its_page(anonymous, pending):
    mirrored = anonymous.get("/api/v1/projects/VCS-3005").get_json()
    native = anonymous.get("/api/v1/projects/KAP-AF-01").get_json()

    assert (mirrored["registry"], mirrored["registry_url"]) == ("verra", VERRA_PAGE)
    assert (native["registry"], native["registry_url"]) == ("kapok", None)


def test_a_retirement_carries_its_phase_at_verra_from_pending_to_confirmed(
        anonymous, market, pending):
    body = anonymous.get(f"/api/v1/retirements/{pending}").get_json()
    assert [body[name] for name in PHASE_FIELDS] == ["pending", [], None]
    assert body["blocks"][0]["serial"] == RETIRED_SERIAL
    assert body["blocks"][0]["registry"] == "verra"

    market.ledger.confirm_registry_retirement(pending, [RETIRED_SERIAL], CONFIRMED_ON)
    own = native_retirement(market.ledger)
    settled(market)

    body = anonymous.get(f"/api/v1/retirements/{pending}").get_json()
    assert [body[name] for name in PHASE_FIELDS] == [
        "confirmed", [RETIRED_SERIAL], CONFIRMED_ON.isoformat()]
    listed = anonymous.get("/api/v1/retirements?page_size=100").get_json()["items"]
    row = next(item for item in listed if item["retirement_id"] == pending)
    assert [row[name] for name in PHASE_FIELDS] == ["confirmed", [RETIRED_SERIAL], CONFIRMED_ON.isoformat()]
    native = next(item for item in listed if item["retirement_id"] == own)
    assert [native[name] for name in PHASE_FIELDS] == [None, [], None]


def test_a_failed_retirement_says_why(anonymous, market, pending):
    market.ledger.fail_registry_retirement(pending, "refused by Verra")

    body = anonymous.get(f"/api/v1/retirements/{pending}").get_json()

    assert (body["registry_phase"], body["registry_failure"]) == ("failed", "refused by Verra")


def test_holdings_show_verras_serials_for_mirrored_blocks(as_role, market):
    import_export(market.ledger)
    market.ledger.transfer(HOLDING, BUYER_ACCOUNT, serials=SerialRange(941383000, 941383009))

    items = as_role("buyer").get("/api/v1/holdings?project=VCS-3005").get_json()["items"]

    assert [(item["vintage"], item["quantity"]) for item in items] == [(2022, 10)]
    assert items[0]["blocks"] == [{
        "serial": f"19380-941383000-941383009-{TAIL_2022}", "batch": 19380,
        "first": 941383000, "last": 941383009, "quantity": 10, "registry": "verra"}]
    native_holding(market.ledger)
    native = as_role("buyer").get("/api/v1/holdings?project=KAP-AF-01").get_json()["items"]
    assert {block["registry"] for item in native for block in item["blocks"]} == {"kapok"}


def test_a_buyer_retires_by_verra_serial_through_the_api(as_role, market):
    import_export(market.ledger)
    market.ledger.transfer(HOLDING, BUYER_ACCOUNT, serials=SerialRange(941383000, 941383009))
    serial = f"19380-941383000-941383004-{TAIL_2022}"

    response = as_role("buyer").post("/api/v1/retirements", json={
        "serials": serial, "beneficiary": "Andes", "reason": "Other"})

    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert [block["serial"] for block in body["blocks"]] == [serial]
    assert body["registry_phase"] == "pending"
    malformed = as_role("buyer").post("/api/v1/retirements", json={
        "serials": serial.replace("VER", "XYZ"), "beneficiary": "Andes", "reason": "Other"})
    assert malformed.status_code == 422
    assert "neither VER nor MER" in str(malformed.get_json()["errors"])


def test_the_openapi_document_describes_the_registry_fields(anonymous):
    schemas = anonymous.get("/api/v1/openapi.json").get_json()["components"]["schemas"]

    for schema, names in (("Retirement", PHASE_FIELDS + ("registry_failure",)),
                          ("RetirementListItem", PHASE_FIELDS),
                          ("Project", ("registry", "registry_url")),
                          ("SerialBlock", ("registry", "serial"))):
        for name in names:
            assert schemas[schema]["properties"][name].get("description"), (schema, name)
