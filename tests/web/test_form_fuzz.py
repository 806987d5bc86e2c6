"""Hostile input in the site's forms: negative, zero, huge, non-numeric, NaN, exponents,
malformed serial ranges, unknown ids, overlong, control and bidi characters. Each is refused
with a 4xx and a message people can read, and nothing is recorded; markup and other scripts'
letters are kept as text. Each form's valid baseline is posted last, to show that the refusals
came from the bad field and not from a broken baseline."""

from __future__ import annotations

import re
import secrets

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.web.conftest import LOGINS, csrf_token

OVERLONG = "x" * 10_000
HUGE = "1" + "0" * 30
NOT_WHOLE = ["-5", "0", HUGE, "ten", "NaN", "Infinity", "-Infinity", "1e3", "1.5", "0x10", "",
             " ", "9" * 10_000, "5\x00", "<script>alert(1)</script>"]
NOT_MONEY = ["-1", "0", "0.00", HUGE, "abc", "NaN", "Infinity", "1e3", "12.345", "",
             "9" * 10_000, "5\x00"]
NOT_PRICE = [value for value in NOT_MONEY if value != "12.345"] + ["1.1234567"]
# Estimates read spreadsheet quantities: 1e3 kWh is a thousand, and zero of one activity is fine.
NOT_QUANTITY = ["-1", HUGE, "abc", "NaN", "Infinity", "-Infinity", "1e999999", "",
                "9" * 10_000, "5\x00"]
NOT_HECTARES = ["-1", HUGE, "abc", "NaN", "Infinity", "1e3", "1.1234567", "", "5\x00"]
BAD_SERIALS = ["12-3", "one-two", "1-", "-5", "1--2", "9" * 10_000, "1-" + HUGE, "KAP-1-x",
               "1-1", "\x00", OVERLONG]
NOT_PRINTABLE = ["Acme\x00", "Acme\x07", "\u202eemaN", OVERLONG, ""]
UNKNOWN_LISTING = "00000000-0000-4000-8000-000000000000"
MESSAGE = re.compile(r'class="(?:flash )?error"|<h1>4\d\d · ')


def nonce() -> str:
    return secrets.token_urlsafe(16)


def listing_of(market, project="VCS-1067", vintage=2021) -> str:
    return next(str(listing.id) for listing in market.listings()
                if (listing.project_registry_id, listing.vintage_year) == (project, vintage))


def position(app) -> int:
    return app.extensions["kapok_market"].recorder.max_notification_id() or 0


def identity_position(app) -> int:
    return app.extensions["kapok_identity"].recorder.max_notification_id() or 0


def post(client, path: str, data: dict):
    return client.post(path, data={**data, "csrf_token": csrf_token(client)})


def assert_refused(app, client, path: str, data: dict, what: str):
    """A 4xx with a message shown, and nothing recorded in either store."""
    before = position(app), identity_position(app)
    response = post(client, path, data)
    body = response.get_data(as_text=True)
    assert 400 <= response.status_code < 500, (what, response.status_code, body[:300])
    assert MESSAGE.search(body), (what, body[:500])
    assert "<script>alert(1)</script>" not in body, what
    assert (position(app), identity_position(app)) == before, what


def refuse_each(app, client, path: str, baseline: dict, bad: dict[str, list[str]]):
    for field, values in bad.items():
        for value in values:
            data = {**baseline}
            if "key" in data:  # the console's idempotency key: a fresh one each time
                data["key"] = f"fuzz:{nonce()}"
            if "nonce" in data:
                data["nonce"] = nonce()
            data[field] = value
            assert_refused(app, client, path, data, f"{field}={value[:40]!r}")


@pytest.fixture
def client_for(request):
    return lambda role: request.getfixturevalue(role)


# --- the forms: (role, path, valid baseline, hostile values by field) ----------------------

def forms(market) -> dict:
    listing = listing_of(market)
    held = market.ledger.get_account("org-andes-coffee-roasters").blocks[0]
    return {
        "sign-up": ("anonymous", "/signup", {
            "organisation": "Fuzz Roasters", "name": "Fuzz Tester", "email": "fuzz@x.example",
            "password": "a long passphrase", "confirm": "a long passphrase"}, {
            "organisation": [OVERLONG, "", "!!!"], "name": [OVERLONG, ""],
            "email": [OVERLONG, "not-an-email", "a@b\x00.example", ""],
            "password": ["short", OVERLONG], "confirm": ["different passphrase"]}),
        "log-in": ("anonymous", "/login", {
            "email": LOGINS["buyer"][0], "password": LOGINS["buyer"][1]}, {
            "email": [OVERLONG, "not-an-email", "\x00", ""],
            "password": ["wrong password", OVERLONG, ""]}),
        "quote by tonnes": ("anonymous", f"/catalogue/{listing}/quote",
                            {"by": "tonnes", "tonnes": "10"},
                            {"tonnes": NOT_WHOLE, "by": ["bitcoin", ""]}),
        "quote by budget": ("anonymous", f"/catalogue/{listing}/quote",
                            {"by": "amount", "amount": "250.00"}, {"amount": NOT_MONEY}),
        "quote by emissions": ("anonymous", f"/catalogue/{listing}/quote",
                               {"by": "estimate", "electricity_kwh": "12000",
                                "electricity_country": "PE"},
                               {"electricity_kwh": NOT_QUANTITY, "electricity_country": ["ZZ"]}),
        "place order": ("buyer", "/my/orders", {
            "listing_id": listing, "tonnes": "7", "nonce": nonce()}, {
            "tonnes": NOT_WHOLE,
            "listing_id": [UNKNOWN_LISTING, "x" * 64, OVERLONG, "' OR 1=1 --", "\x00", ""],
            "nonce": ["<script>", "short", OVERLONG],
            "period_start": ["2026-13-45", "yesterday"], "claim_type": ["bragging"]}),
        "retire at once": ("buyer", "/my/orders", {
            "listing_id": listing, "tonnes": "7", "nonce": nonce(), "retire_now": "y",
            "beneficiary": "Andes Coffee Roasters", "reason": "Other"}, {
            "beneficiary": NOT_PRINTABLE[:-1], "reason": ["Because"],
            "details": ["x" * 501, "\x00"]}),
        "retire": ("buyer", "/my/portfolio/retire", {
            "beneficiary": "Andes Coffee Roasters", "reason": "Other", "quantity": "5",
            "nonce": nonce()}, {
            "quantity": [v for v in NOT_WHOLE if v.strip()] + ["100000"],
            "beneficiary": NOT_PRINTABLE, "details": ["x" * 501, "\x00"],
            "period_end": ["0000-00-00"], "claim_type": ["bragging"]}),
        "retire serials": ("buyer", "/my/portfolio/retire", {
            "beneficiary": "Andes Coffee Roasters", "reason": "Other", "quantity": "",
            "serials": f"{held.first}-{held.first + 1}", "nonce": nonce()}, {"serials": BAD_SERIALS}),
        "console issuance": ("operator", "/console/projects/KAP-AF-01/issuances", {
            "key": "", "vintage": "2024", "quantity": "100"}, {
            "quantity": NOT_WHOLE, "vintage": ["1800", "abc", HUGE]}),
        "console listing": ("operator", "/console/listings/new", {
            "key": "", "project": "KAP-AF-01", "vintage": "2024",
            "inventory_account": "ecosphere-inventory", "price_per_tonne": "18.50",
            "currency": "USD", "on_offer": "50", "minimum_quantity": "1", "tiers": ""}, {
            "price_per_tonne": NOT_PRICE, "on_offer": NOT_WHOLE, "minimum_quantity": NOT_WHOLE,
            "vintage": ["1800", HUGE, "2024.0"], "project": ["NOPE-1", OVERLONG],
            "currency": ["XXX", "usd"], "inventory_account": ["nobody"],
            "tiers": ["100", "x 12.00", "100 -1", "100 NaN", "\n".join(["1 1"] * 21)]}),
        "console payout": ("operator", "/console/payouts", {
            "currency": "USD", "recipient": "farmers", "farm_code": "COOP-001",
            "amount": "1.00", "paid_on": "2026-01-15", "reference": "BCP-FUZZ"}, {
            "amount": NOT_MONEY + ["100000000.00"], "recipient": ["Farmers!", OVERLONG, ""],
            "farm_code": ["COOP 1", OVERLONG], "paid_on": ["2026-02-30", "soon", ""],
            "reference": [OVERLONG, ""], "currency": ["XXX"]}),
        "console farm": ("operator", "/console/farms", {
            "key": "", "project": "KAP-AF-01", "farm_code": "COOP-FUZZ",
            "farmer_name": "Familia Fuzz", "forest_ha": "20", "agroforestry_ha": "4.5",
            "weight": ""}, {
            "forest_ha": NOT_HECTARES, "agroforestry_ha": NOT_HECTARES,
            "weight": NOT_HECTARES[:-2], "farm_code": ["COOP 9", "COOP--9", OVERLONG, ""],
            "farmer_name": [OVERLONG, ""], "project": ["NOPE-1"]}),
        "console rule": ("operator", "/console/rules", {
            "project": "KAP-AF-01",
            "shares": "farmers 70\naider-field-programme 20\necosphere-fee 10"}, {
            "shares": ["farmers 60\naider-field-programme 30", "farmers 60\nfarmers 40",
                       "farmers NaN", "farmers 1e2", "farmers -10\naider 110", "farmers",
                       "\n".join(f"r{i} 1" for i in range(21)), OVERLONG, ""],
            "effective_from": ["2026-13-01T00:00", "tomorrow"], "project": ["NOPE-1"]}),
    }


FORM_NAMES = ["sign-up", "log-in", "quote by tonnes", "quote by budget", "quote by emissions",
              "place order", "retire at once", "retire", "retire serials", "console issuance",
              "console listing", "console payout", "console farm", "console rule"]
ACCEPTED = {"/signup": 302, "/login": 302, "/my/orders": 302, "/my/portfolio/retire": 302}


@pytest.mark.slow
@pytest.mark.parametrize("name", FORM_NAMES)
def test_hostile_values_are_refused_with_a_message_and_nothing_saved(app, market, client_for,
                                                                   name):
    role, path, baseline, bad = forms(market)[name]
    client = client_for(role)
    if name == "console payout":  # something owed to the farm, so a payout can be valid
        listing = next(listing for listing in market.listings()
                       if listing.project_registry_id == "KAP-AF-01")
        order = market.place_order(str(listing.id), 50,
                                   "andes-coffee-roasters", "org-andes-coffee-roasters")
        market.pay_offline(order["order_id"])
    refuse_each(app, client, path, baseline, bad)
    # The baseline itself is accepted: the refusals above were the bad field's doing.
    valid = {**baseline, "key": f"fuzz:{nonce()}"} if "key" in baseline else baseline
    response = post(client, path, {**valid, "nonce": nonce()} if "nonce" in valid else valid)
    expected = 200 if "/quote" in path else ACCEPTED.get(path, 302)
    assert response.status_code == expected, response.get_data(as_text=True)[:800]


def test_a_quote_for_an_unknown_or_overlong_listing_is_a_404_or_400(anonymous):
    assert anonymous.get(f"/catalogue/{UNKNOWN_LISTING}/quote").status_code == 404
    assert anonymous.get(f"/catalogue/{'x' * 10_000}/quote").status_code in (400, 404, 414)


def test_markup_and_other_scripts_in_a_beneficiary_are_kept_as_text(app, buyer, market):
    name = "<script>alert(1)</script> شركة الأنديز ‏Ñandú 東京"
    response = post(buyer, "/my/portfolio/retire", {
        "beneficiary": name, "reason": "Other", "quantity": "1", "nonce": nonce()})
    assert response.status_code == 302
    retired = market.caught_up_view().retirements()[0]
    assert retired["beneficiary"] == name
    page = buyer.get("/my/portfolio").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page


# --- any text at all in a number field: accepted as a number, or refused; never a 5xx ----

ANY_TEXT = st.one_of(st.text(max_size=40), st.from_regex(r"-?[0-9]{1,40}(\.[0-9]{0,8})?",
                                                         fullmatch=True))


@pytest.mark.slow
@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tonnes=ANY_TEXT)
def test_any_text_as_tonnes_is_an_order_or_a_refusal_never_a_failure(app, buyer, market,
                                                                      tonnes):
    before = position(app)
    response = post(buyer, "/my/orders", {"listing_id": listing_of(market), "tonnes": tonnes,
                                          "nonce": nonce()})
    if response.status_code == 302:
        assert int(tonnes.strip()) >= 1 and position(app) > before
    else:
        assert 400 <= response.status_code < 500, (tonnes, response.status_code)
        assert position(app) == before


@pytest.mark.slow
@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(quantity=ANY_TEXT)
def test_any_text_as_an_issuance_is_issued_or_refused_never_a_failure(app, operator, quantity):
    before = position(app)
    response = post(operator, "/console/projects/KAP-AF-01/issuances",
                    {"key": f"fuzz:{nonce()}", "vintage": "2024", "quantity": quantity})
    if response.status_code == 302:
        assert re.fullmatch(r"\s*[0-9]+\s*", quantity) and position(app) > before
    else:
        assert 400 <= response.status_code < 500, (quantity, response.status_code)
        assert MESSAGE.search(response.get_data(as_text=True))
        assert position(app) == before
