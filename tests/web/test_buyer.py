"""A buyer organisation's pages: ordering, paying with the demo's test card, the portfolio,
retiring, certificates, API tokens, and that one organisation never sees another's things."""

from __future__ import annotations

import re
import secrets

import pytest

from ledger.read.holder_queries import retirements_of
from market.domain.payments import OfflinePaymentProvider, Payment
from tests.conftest import settled
from tests.pdf_text import page_text
from tests.web.buyer_forms import first_listing, order_form, place
from tests.web.conftest import LOGINS, ORG_A, ORG_B, csrf_token, log_in, post_form
from web import create_app

ACCOUNT_A = f"org-{ORG_A}"


def orders_of(market, org: str) -> int:
    return market.caught_up_view().orders(buyer_org=org)[1]


def latest_retirement(market) -> dict:
    return retirements_of(market.caught_up_view(), ACCOUNT_A, ORG_A)[0][0]


def held(market, account=ACCOUNT_A, project="VCS-1067", vintage=2021) -> int:
    return sum(block.quantity for block in market.ledger.get_account(account).blocks
               if (block.project, block.vintage) == (project, vintage))


# --- ordering and paying -------------------------------------------------------------------
def test_a_buyer_orders_pays_with_the_test_card_and_finds_the_tonnes_in_its_portfolio(buyer,
                                                                                   market):
    # The quote page posts the listing and the tonnes: the order is reserved for the buyer.
    order_id = place(buyer, market, tonnes="7")
    page = buyer.get(f"/my/orders/{order_id}").get_data(as_text=True)
    assert "Pay with test card (demo, no money moves)" in page
    assert "data-countdown" in page and "Cancel the order" in page
    assert buyer.get(f"/my/orders/{order_id}.json").get_json()["state"] == "reserved"

    # The test card pays at once: the order is fulfilled and the serials delivered.
    response = post_form(buyer, f"/my/orders/{order_id}/pay", {})
    assert response.status_code == 302
    assert buyer.get(f"/my/orders/{order_id}.json").get_json()["state"] == "fulfilled"
    assert held(market) == 7

    serial = market.get_order(order_id).serials[0]
    portfolio = buyer.get("/my/portfolio").get_data(as_text=True)
    assert serial in portfolio
    assert "Paid and delivered" in buyer.get(f"/my/orders/{order_id}").get_data(as_text=True)


def test_a_paid_order_page_shows_where_the_payment_went(buyer, market):
    order_id = place(buyer, market, tonnes="7")  # 7 t of VCS-1067 2021 at USD 14.00
    assert "Where your payment went" not in buyer.get(f"/my/orders/{order_id}").get_data(
        as_text=True)  # reserved: no money has gone anywhere
    post_form(buyer, f"/my/orders/{order_id}/pay", {})

    page = buyer.get(f"/my/orders/{order_id}").get_data(as_text=True)
    section = page[page.index("Where your payment went"):]
    rows = re.findall(r"<tr><td>([\w-]+)</td>\s*<td class=\"num\">([^<]+)</td>", section)
    # The demo's rule: 60% farmers, 25% AIDER's field programme, 15% Ecosphere+'s fee. This
    # project has no farms registered, so the farmers' share is owed to them as a whole.
    assert rows == [("aider-field-programme", "USD 24.50"), ("ecosphere-fee", "USD 14.70"),
                    ("farmers", "USD 58.80")]  # by recipient
    assert "USD 98.00" in section and "/transparency" in section
    assert "owed to the farmers as a whole" in section and "<th>Farm</th>" not in section

    # A refund withdraws the shares, and the page says so.
    market.refund_order(order_id, "ordered twice by mistake")
    page = buyer.get(f"/my/orders/{order_id}").get_data(as_text=True)
    assert "This sale was refunded on" in page and "USD 58.80" in page


def test_a_paid_order_of_farm_credits_shows_each_farms_share(buyer, market):
    listing = first_listing(market, "KAP-AF-01", 2023)
    response = post_form(buyer, "/my/orders", {"listing_id": str(listing.id), "tonnes": "7",
                                               "nonce": secrets.token_urlsafe(16)})
    order_id = response.headers["Location"].rsplit("/", 1)[1]
    post_form(buyer, f"/my/orders/{order_id}/pay", {})

    page = buyer.get(f"/my/orders/{order_id}").get_data(as_text=True)
    section = page[page.index("Where your payment went"):]
    farms = re.findall(r"<tr><td>farmers</td><td>(COOP-\d+)</td>\s*<td class=\"num\">([^<]+)</td>",
                       section)
    # 60% of USD 168.00 by agroforestry hectares (6, 4, 3, 8 and 5 of 26).
    assert farms == [("COOP-001", "USD 23.26"), ("COOP-002", "USD 15.51"),
                     ("COOP-003", "USD 11.63"), ("COOP-004", "USD 31.02"),
                     ("COOP-005", "USD 19.38")]
    assert "went to each farm by its hectares" in section


def test_an_order_to_retire_at_once_is_retired_when_paid_with_a_certificate(buyer, market):
    order_id = place(buyer, market, tonnes="3", retire_now="y", beneficiary="Cafe Tambopata Ltd",
                     reason="Environmental Benefit", period_start="2026-01-01",
                     period_end="2026-06-30", claim_type="contribution")
    post_form(buyer, f"/my/orders/{order_id}/pay", {})

    order = market.get_order(order_id)
    assert order.state == "fulfilled" and held(market) == 0
    retirement = market.ledger.get_retirement(order.delivery_reference)
    assert (retirement.quantity, retirement.claim.beneficiary, retirement.claim.claim_type) == (
        3, "Cafe Tambopata Ltd", "contribution")
    response = buyer.get(f"/my/retirements/{retirement.retirement_id}/certificate.pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    text = page_text(response.data)
    assert "Cafe Tambopata Ltd" in text
    assert f"Order {order_id} (fulfilled) paid USD 42.00" in text  # 3 t at USD 14.00
    assert f"/registry/{retirement.retirement_id}" in text
    # Retired from the order's escrow account, it is still the organisation's retirement.
    assert retirement.retirement_id in buyer.get("/my/portfolio").get_data(as_text=True)


def test_retiring_at_once_without_a_name_retires_on_the_organisations_behalf(buyer, market):
    # The storefront's quote page asks only "retire on my organisation's behalf?".
    order_id = place(buyer, market, tonnes="1", retire_now="1")
    post_form(buyer, f"/my/orders/{order_id}/pay", {})
    retirement = market.ledger.get_retirement(market.get_order(order_id).delivery_reference)
    assert retirement.claim.beneficiary == "Andes Coffee Roasters"


def test_submitting_the_same_order_form_twice_orders_once(buyer, market):
    before = orders_of(market, ORG_A)
    form = order_form(market, tonnes="5")
    first = post_form(buyer, "/my/orders", form)
    second = post_form(buyer, "/my/orders", form)
    assert first.status_code == second.status_code == 302
    assert first.headers["Location"] == second.headers["Location"]
    assert orders_of(market, ORG_A) == before + 1
    assert first_listing(market).reserved == 5


@pytest.mark.parametrize("tonnes", ["0", "-5", "abc", "1.5", "", "1e3", "10000000001",
                                    "99999999999999999999999999"])
def test_a_bad_quantity_is_refused_with_a_400_and_no_order(buyer, market, tonnes):
    before = orders_of(market, ORG_A)
    response = post_form(buyer, "/my/orders", order_form(market, tonnes=tonnes))
    assert response.status_code == 400
    assert "Tonnes" in response.get_data(as_text=True)
    assert orders_of(market, ORG_A) == before
    assert first_listing(market).reserved == 0


@pytest.mark.parametrize("fields, message", [
    ({"listing_id": "no-such-listing"}, "unknown listing"),
    ({"listing_id": ""}, "This field is required"),
    ({"nonce": "<script>"}, "malformed form nonce"),
    ({"retire_now": "y", "beneficiary": " ", "reason": ""}, "Not a valid choice"),
    ({"retire_now": "y", "beneficiary": "x" * 501}, "Field cannot be longer than 500"),
    ({"retire_now": "y", "beneficiary": "A", "period_start": "2026-02-01",
      "period_end": "2026-01-01"}, "ends before it starts"),
    ({"retire_now": "y", "beneficiary": "A", "period_start": "yesterday"}, "Not a valid date"),
    ({"retire_now": "y", "beneficiary": "A", "reason": "<b>Because</b>"}, "Not a valid choice"),
])
def test_bad_order_input_is_refused_with_a_message_and_no_order(buyer, market, fields, message):
    before = orders_of(market, ORG_A)
    response = post_form(buyer, "/my/orders", order_form(market, **fields))
    assert response.status_code in (400, 404)
    assert message in response.get_data(as_text=True)
    assert "<script>" not in response.get_data(as_text=True)
    assert orders_of(market, ORG_A) == before


def test_ordering_needs_a_login(anonymous, market):
    anonymous.get("/login")
    response = post_form(anonymous, "/my/orders", order_form(market))
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert anonymous.get("/my/portfolio").status_code == 302


def test_a_reserved_order_can_be_cancelled_and_its_tonnes_go_back_on_offer(buyer, market):
    order_id = place(buyer, market, tonnes="4")
    assert first_listing(market).reserved == 4
    assert post_form(buyer, f"/my/orders/{order_id}/cancel", {}).status_code == 302
    assert market.get_order(order_id).state == "cancelled"
    assert first_listing(market).reserved == 0
    # A cancelled order cannot be paid any more.
    post_form(buyer, f"/my/orders/{order_id}/pay", {})
    assert market.get_order(order_id).state == "cancelled"


def test_paying_twice_pays_once_and_says_so(buyer, market):
    order_id = place(buyer, market, tonnes="2")
    post_form(buyer, f"/my/orders/{order_id}/pay", {})
    again = post_form(buyer, f"/my/orders/{order_id}/pay", {}, follow_redirects=True)
    assert again.status_code == 200
    assert "is fulfilled: there is nothing to pay" in again.get_data(as_text=True)
    assert held(market) == 2


def test_the_checkout_page_updates_by_a_self_hosted_script_or_a_refresh_link(buyer, market):
    order_id = place(buyer, market)
    page = buyer.get(f"/my/orders/{order_id}").get_data(as_text=True)
    assert '<script src="/static/order.js"' in page
    assert "<script>" not in page  # CSP: no inline script
    assert f'data-state-url="/my/orders/{order_id}.json"' in page
    assert "<noscript>" in page and "Refresh to see the latest state" in page
    with buyer.get("/static/order.js") as script:
        assert script.status_code == 200


# --- one organisation never sees another's -------------------------------------------------
def test_another_organisation_gets_404_for_an_order_its_state_and_its_actions(buyer, other_buyer,
                                                                             market):
    order_id = place(buyer, market)
    for path in (f"/my/orders/{order_id}", f"/my/orders/{order_id}.json"):
        response = other_buyer.get(path)
        assert response.status_code == 404
        assert "7 t" not in response.get_data(as_text=True)
    for action in ("pay", "cancel"):
        assert post_form(other_buyer, f"/my/orders/{order_id}/{action}", {}).status_code == 404
    assert market.get_order(order_id).state == "reserved"
    assert order_id not in other_buyer.get("/my/orders").get_data(as_text=True)


def test_another_organisation_gets_404_for_a_certificate(buyer, other_buyer, market):
    retirement_id = latest_retirement(market)["retirement_id"]  # the demo's
    assert buyer.get(f"/my/retirements/{retirement_id}/certificate.pdf").status_code == 200
    response = other_buyer.get(f"/my/retirements/{retirement_id}/certificate.pdf")
    assert response.status_code == 404
    assert b"%PDF" not in response.data
    assert other_buyer.get("/my/retirements/KAP-RET-NOSUCH/certificate.pdf").status_code == 404


def test_a_retire_at_once_certificate_is_only_for_the_ordering_organisation(buyer, other_buyer,
                                                                           market):
    order_id = place(buyer, market, tonnes="2", retire_now="y", beneficiary="Andes Team")
    post_form(buyer, f"/my/orders/{order_id}/pay", {})
    retirement_id = market.get_order(order_id).delivery_reference
    assert buyer.get(f"/my/retirements/{retirement_id}/certificate.pdf").status_code == 200
    assert other_buyer.get(f"/my/retirements/{retirement_id}/certificate.pdf").status_code == 404


# --- the order list --------------------------------------------------------------------------
def test_the_order_list_shows_the_organisations_orders_twenty_a_page(buyer, other_buyer, market):
    listing = str(first_listing(market).id)
    ids = [market.place_order(listing, 1, ORG_A, ACCOUNT_A)["order_id"] for _ in range(21)]
    theirs = market.place_order(listing, 1, ORG_B, f"org-{ORG_B}")["order_id"]
    settled(market)
    first_page = buyer.get("/my/orders").get_data(as_text=True)
    second_page = buyer.get("/my/orders?page=2").get_data(as_text=True)
    assert sum(order_id in first_page for order_id in ids) == 20
    assert sum(order_id in second_page for order_id in ids) == 1
    assert "Page 1 of 2" in first_page and theirs not in first_page + second_page
    assert theirs in other_buyer.get("/my/orders").get_data(as_text=True)
    assert ids[0] in buyer.get(f"/my/orders?state=reserved&q={ids[0][-6:]}").get_data(as_text=True)


@pytest.mark.parametrize("query", ["page=0", "page=-1", "page=abc", "state=<b>"])
def test_bad_order_list_parameters_give_400(buyer, query):
    assert buyer.get(f"/my/orders?{query}").status_code == 400


# --- portfolio and retiring ----------------------------------------------------------------
def retire_form(**fields) -> dict:
    return {"quantity": "5", "beneficiary": "Andes Coffee Roasters S.A.C.",
            "reason": "Corporate Emissions Inventory Accounting", "claim_type": "offset",
            "period_start": "2026-01-01", "period_end": "2026-12-31",
            "nonce": secrets.token_urlsafe(16), **fields}


def test_the_portfolio_shows_holdings_with_serials_and_the_demo_retirement(buyer, market):
    page = buyer.get("/my/portfolio").get_data(as_text=True)
    block = market.ledger.get_account(ACCOUNT_A).blocks[0]
    assert block.serial in page and "380" in page  # 500 bought, 120 retired by the demo
    assert "Andes Coffee Roasters S.A.C." in page and "certificate.pdf" in page
    assert "becomes <strong>public</strong>" in page


def test_retiring_from_the_portfolio_records_it_and_gives_a_certificate(buyer, market):
    before = market.ledger.get_account(ACCOUNT_A).balance
    response = post_form(buyer, "/my/portfolio/retire",
                         retire_form(beneficiary="Rosa's Roastery Team"))
    assert response.status_code == 302
    assert market.ledger.get_account(ACCOUNT_A).balance == before - 5
    retirement = latest_retirement(market)
    assert (retirement["beneficiary"], retirement["quantity"]) == ("Rosa's Roastery Team", 5)
    page = buyer.get("/my/portfolio").get_data(as_text=True)
    assert retirement["retirement_id"] in page

    pdf = buyer.get(f"/my/retirements/{retirement['retirement_id']}/certificate.pdf").data
    assert pdf.startswith(b"%PDF")
    assert "Rosa's Roastery Team" in page_text(pdf)


def test_retiring_an_exact_serial_range(buyer, market):
    block = market.ledger.get_account(ACCOUNT_A).blocks[0]
    wanted = f"{block.first + 10}-{block.first + 12}"
    response = post_form(buyer, "/my/portfolio/retire", retire_form(quantity="", serials=wanted))
    assert response.status_code == 302
    retired = market.ledger.get_retirement(latest_retirement(market)["retirement_id"])
    assert [(b.first, b.last) for b in retired.blocks] == [(block.first + 10, block.first + 12)]


@pytest.mark.parametrize("fields, message", [
    ({"quantity": "0"}, "Number must be between"),
    ({"quantity": "-3"}, "Number must be between"),
    ({"quantity": "lots"}, "Not a valid integer"),
    ({"quantity": "100000"}, "insufficient credits"),
    ({"quantity": "", "serials": ""}, "give either a number of tonnes or a serial range"),
    ({"quantity": "5", "serials": "1-5"}, "give either a number of tonnes or a serial range"),
    ({"quantity": "", "serials": "12-3"}, "invalid serial"),
    ({"quantity": "", "serials": "one-two"}, "invalid serial"),
    ({"quantity": "", "serials": "1-1"}, "does not hold serial"),
    ({"beneficiary": ""}, "This field is required"),
    ({"beneficiary": "<script>x</script>" * 40}, "cannot be longer than 500"),
    ({"period_start": "2026-12-31", "period_end": "2026-01-01"}, "ends before it starts"),
    ({"claim_type": "bragging"}, "Not a valid choice"),
])
def test_bad_retirement_input_is_refused_with_a_message_and_nothing_retired(buyer, market,
                                                                          fields, message):
    before = market.ledger.get_account(ACCOUNT_A).balance
    response = post_form(buyer, "/my/portfolio/retire", retire_form(**fields))
    assert 400 <= response.status_code < 500
    body = response.get_data(as_text=True)
    assert message in body
    assert "<script>x</script>" not in body
    assert market.ledger.get_account(ACCOUNT_A).balance == before


def test_unicode_and_markup_in_a_beneficiary_are_kept_as_text(buyer, market):
    name = "Café Ñandú <b>東京</b> 🌳"
    response = post_form(buyer, "/my/portfolio/retire", retire_form(beneficiary=name))
    assert response.status_code == 302
    retirement_id = latest_retirement(market)["retirement_id"]
    assert market.ledger.get_retirement(retirement_id).claim.beneficiary == name
    page = buyer.get("/my/portfolio").get_data(as_text=True)
    assert "Café Ñandú &lt;b&gt;東京&lt;/b&gt; 🌳" in page
    response = buyer.get(f"/my/retirements/{retirement_id}/certificate.pdf")
    assert response.status_code == 200 and response.data.startswith(b"%PDF")


def test_a_new_organisation_sees_an_empty_portfolio(anonymous):
    response = post_form(anonymous, "/signup", {
        "organisation": "Cusco Textiles", "name": "Ana Torres", "email": "ana@cusco.example",
        "password": "a long passphrase", "confirm": "a long passphrase"})
    assert response.status_code == 302
    page = anonymous.get("/my/portfolio")
    assert page.status_code == 200
    assert "No credits held yet" in page.get_data(as_text=True)
    assert "No orders yet" in anonymous.get("/my/orders").get_data(as_text=True)


# --- API tokens ----------------------------------------------------------------------------
def test_a_buyer_creates_a_token_shown_once_uses_it_and_revokes_it(buyer, other_buyer, market,
                                                                   identity):
    order_id = place(buyer, market)
    page = post_form(buyer, "/my/tokens", {"label": "ERP <integration>"}).get_data(as_text=True)
    token = re.search(r"(kapok_[A-Za-z0-9_-]{20,})", page).group(1)
    assert "ERP &lt;integration&gt;" in page
    assert token not in buyer.get("/my/tokens").get_data(as_text=True)  # shown once only

    machine = buyer.application.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    assert machine.get(f"/my/orders/{order_id}.json", headers=headers).get_json()["state"] == \
        "reserved"

    token_id = re.search(r"/my/tokens/([0-9a-f-]{36})/revoke", page).group(1)
    assert post_form(other_buyer, f"/my/tokens/{token_id}/revoke", {}).status_code == 404
    assert [t.label for t in identity.tokens_of(LOGINS["other_buyer"][0])] == []
    assert [t.label for t in identity.tokens_of(LOGINS["buyer"][0])] == ["ERP <integration>"]
    assert post_form(buyer, f"/my/tokens/{token_id}/revoke", {}).status_code == 302
    assert "revoked" in buyer.get("/my/tokens").get_data(as_text=True)
    assert machine.get(f"/my/orders/{order_id}.json", headers=headers).status_code == 302


def test_a_token_needs_a_label(buyer):
    response = post_form(buyer, "/my/tokens", {"label": ""})
    assert response.status_code == 400
    assert not re.search(r"kapok_[A-Za-z0-9_-]{20,}", response.get_data(as_text=True))


def test_the_storefront_can_render_an_order_form_that_orders_once(app, buyer, market):
    from flask import render_template_string

    listing_id = str(first_listing(market).id)
    with app.test_request_context():
        html = render_template_string('{% from "buyer/_order_form.html" import order_form %}'
                                      '{{ order_form(listing_id, 3) }}', listing_id=listing_id)
    fields = dict(re.findall(r'name="(listing_id|nonce)" value="([^"]+)"', html))
    assert fields["listing_id"] == listing_id and len(fields["nonce"]) >= 16
    assert "Corporate Emissions Inventory Accounting" in html and "public" in html
    before = orders_of(market, ORG_A)
    for _ in range(2):
        post_form(buyer, "/my/orders", {**fields, "tonnes": "3"})
    assert orders_of(market, ORG_A) == before + 1


# --- with a card provider instead of the offline one ---------------------------------------
class CardProvider(OfflinePaymentProvider.__mro__[1]):
    """A stand-in for Stripe: payments are created, never confirmed here."""

    name = "stripe"

    def create_payment(self, order_id, amount_minor, currency, description):
        return Payment(f"pi_{order_id.lower()}", "requires_payment_method", amount_minor,
                       currency, client_secret=f"pi_{order_id.lower()}_secret_x", test_mode=True)

    def confirm_payment(self, payment_id, payment_method):
        raise NotImplementedError

    def refund(self, payment_id, order_id, amount_minor=None):
        raise NotImplementedError

    def parse_webhook(self, payload, signature_header):
        raise NotImplementedError


def test_with_a_card_provider_the_card_step_happens_on_the_provider(store_url, tmp_path,
                                                                   monkeypatch):
    monkeypatch.setenv("KAPOK_SIGNING_KEY_FILE", str(tmp_path / "keys" / "signing-key.pem"))
    app = create_app({"TESTING": True, "DATABASE_URL": store_url, "SECRET_KEY": "x" * 32,
                      "PAYMENT_PROVIDER": CardProvider()})
    try:
        market = app.extensions["kapok_market"]
        client = app.test_client()
        log_in(client, *LOGINS["buyer"])
        order_id = place(client, market)
        checkout = client.get(f"/my/orders/{order_id}").get_data(as_text=True)
        assert "Pay with test card" not in checkout
        page = post_form(client, f"/my/orders/{order_id}/pay", {}).get_data(as_text=True)
        assert "The card step happens on Stripe" in page
        assert f"pi_{order_id.lower()}" in page
        assert market.get_order(order_id).state == "reserved"
    finally:
        app.extensions["kapok_market"].close()
        app.extensions["kapok_identity"].close()


def test_a_card_is_refused_plainly_when_the_shop_takes_no_card_details(buyer, market):
    # The demo's offline provider takes test payments only: no card form, no card endpoint.
    order_id = place(buyer, market)
    assert 'id="card-form"' not in buyer.get(f"/my/orders/{order_id}").get_data(as_text=True)
    token = csrf_token(buyer, f"/my/orders/{order_id}")
    response = buyer.post(f"/my/orders/{order_id}/card", json={"payment_method": "pm_x"},
                          headers={"X-CSRFToken": token})
    assert response.status_code == 409
    assert "takes no card details" in response.get_json()["message"]
    assert market.get_order(order_id).state == "reserved"


def test_the_card_endpoint_needs_the_pages_csrf_token(buyer, market):
    order_id = place(buyer, market)
    response = buyer.post(f"/my/orders/{order_id}/card", json={"payment_method": "pm_x"})
    assert response.status_code == 400
    assert market.get_order(order_id).state == "reserved"


def test_only_the_card_page_lets_the_provider_in_and_only_the_provider():
    from web.security import CONTENT_SECURITY_POLICY, card_page_policy

    stripe = card_page_policy("https://js.stripe.com/v3/")
    assert "script-src 'self' https://js.stripe.com;" in stripe
    assert "frame-src https://js.stripe.com https://hooks.stripe.com;" in stripe
    assert "connect-src 'self' https://api.stripe.com;" in stripe
    fake = card_page_policy("http://127.0.0.1:8420/js.stripe.com/v3/")
    assert "script-src 'self' http://127.0.0.1:8420;" in fake
    assert "connect-src 'self' http://127.0.0.1:8420;" in fake
    # Every other page: the site's own origin only.
    assert "script-src 'self';" in CONTENT_SECURITY_POLICY
    assert "stripe" not in CONTENT_SECURITY_POLICY


def test_a_declined_card_is_the_buyers_to_fix_and_a_failed_provider_is_not():
    from market.domain.payments import CardDeclinedError, PaymentError, PaymentProviderError
    from web.errors import status_for

    assert status_for(CardDeclinedError("card declined: insufficient funds")) == 402
    assert status_for(PaymentProviderError("payment provider error: timeout")) == 502
    assert status_for(PaymentError("the offline provider takes no card details")) == 400
