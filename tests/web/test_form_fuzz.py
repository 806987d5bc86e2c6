"""Hostile input in the site's forms: negative, zero, huge, non-numeric, NaN, exponents,
malformed serial ranges, unknown ids, overlong, control and bidi characters. Each is refused
with a 4xx and a message people can read, and nothing is recorded; markup and other scripts'
letters are kept as text. Each form's valid baseline is posted last, to show that the refusals
came from the bad field and not from a broken baseline."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.web.conftest import csrf_token
from tests.web.hostile_forms import (
    FORM_NAMES,
    UNKNOWN_LISTING,
    forms,
    identity_position,
    listing_of,
    nonce,
    position,
)

MESSAGE = re.compile(r'class="(?:flash )?error"|<h1>4\d\d · ')


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
