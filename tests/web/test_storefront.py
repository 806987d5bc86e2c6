"""The public storefront: the story, projects, catalogue, price calculator, retirement registry
and transparency page, as anyone sees them without logging in.

The demo store: VCS-1067 (vintages 2019-2023) and KAP-AF-01 (2021-2024); listings VCS-1067 2021
(USD 14.00, 12.50 from 1,000 t), VCS-1067 2022 (15.00 / 13.50) and KAP-AF-01 2023 (24.00,
22.00 from 500 t); farms COOP-001..005 of KAP-AF-01; 500 t sold to Andes Coffee Roasters, who
retired 120 t of them; and market.demo.SALES, paid through the market: 250 t of KAP-AF-01 2023 to
Lima Logistics and 100 t of VCS-1067 2022 retired at once for Andes Coffee Roasters S.A.C. (with
a payout of USD 500.00 to farm COOP-004).
"""

from __future__ import annotations

import json
import re
from decimal import Decimal

import pytest

from ledger.demo import demo_steps
from ledger.domain.retirements import RetirementClaim
from market.application import Marketplace
from market.demo import LISTINGS, SALES, SHARES, market_demo_steps
from tests.conftest import settled
from tests.web.conftest import post_form
from web import create_app

ANDES_ACCOUNT = "org-andes-coffee-roasters"
# ledger/demo.py: the ledger's own sale to Andes Coffee Roasters and its retirement
LEDGER_DEMO_SOLD, LEDGER_DEMO_RETIRED = 500, 120
# KAP-AF-01's 53,000 t issued, and VCS-1067's 213,900 t active at Verra when imported.
DEMO_ISSUED = 53_000 + 213_900
# The demo's retirement of 120 t: the first serials of VCS-1067's batch 14211 at Verra.
DEMO_RETIRED_SERIAL = "14211-612001501-612001620-VCS-VCU-263-VER-PE-14-1067-01012019-31122019-1"


def demo_sale_minor(project: str, vintage: int, tonnes: int) -> int:
    """What the demo's listing charges for ``tonnes``, at the highest tier they reach."""
    price, tiers = next((price, tiers) for p, v, price, _, _, tiers in LISTINGS
                        if (p, v) == (project, vintage))
    unit = Decimal(price)
    for tier in tiers:
        if tonnes >= tier.min_tonnes:
            unit = tier.price_per_tonne
    return int(unit * tonnes * 100)


DEMO_SOLD = LEDGER_DEMO_SOLD + sum(tonnes for _, _, _, tonnes, _, _ in SALES)
DEMO_RETIRED = LEDGER_DEMO_RETIRED + sum(tonnes for *_, tonnes, _, retire in SALES if retire)
DEMO_SALES_MINOR = {project: sum(demo_sale_minor(p, v, t) for _, p, v, t, _, _ in SALES
                                 if p == project) for project in ("VCS-1067", "KAP-AF-01")}


def share_of(minor: int, recipient: str) -> int:
    return int(minor * SHARES[recipient] / 100)


def usd(minor: int) -> str:
    return f"USD {Decimal(minor) / 100:,.2f}"


def available(project: str, vintage: int) -> int:
    """The demo listing's tonnes on offer less what the demo's sales took from it."""
    on_offer = next(o for p, v, _, o, _, _ in LISTINGS if (p, v) == (project, vintage))
    return on_offer - sum(t for _, p, v, t, _, _ in SALES if (p, v) == (project, vintage))


def text(response) -> str:
    return response.get_data(as_text=True)


def listing_id(market, project: str, vintage: int) -> str:
    return next(str(listing.id) for listing in market.listings()
                if (listing.project_registry_id, listing.vintage_year) == (project, vintage))


def quote_links(html: str) -> list[str]:
    """The listing ids the page offers to price, in order."""
    return re.findall(r'href="/catalogue/([0-9a-f-]{36})/quote"', html)


def demo_retirement_id(market) -> str:
    """The demo's retirement for Andes Coffee Roasters: the first one recorded."""
    rows = market.caught_up_view().recorder.query(
        "SELECT retirement_id FROM kapok_retirements ORDER BY position LIMIT 1", {})
    return rows[0]["retirement_id"]


def sell(market, project: str, vintage: int, tonnes: int) -> str:
    """A paid and fulfilled sale to Andes Coffee Roasters; returns the order id."""
    order = market.place_order(listing_id(market, project, vintage), tonnes,
                               "andes-coffee-roasters", ANDES_ACCOUNT)
    assert market.pay_offline(order["order_id"]) == "fulfilled"
    return order["order_id"]


def quote(client, market, data: dict, project: str = "VCS-1067", vintage: int = 2021):
    path = f"/catalogue/{listing_id(market, project, vintage)}/quote"
    return post_form(client, path, data)


# --- every page is public ------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/projects", "/projects/VCS-1067", "/catalogue",
                                  "/registry", "/transparency"])
def test_the_public_pages_need_no_login_and_link_their_stylesheet(anonymous, path):
    response = anonymous.get(path)

    assert response.status_code == 200
    assert "/static/storefront.css" in text(response)


def test_no_storefront_page_loads_a_script_or_anything_from_another_site(anonymous, market):
    for path in ("/", "/projects/KAP-AF-01", "/catalogue", "/registry", "/transparency",
                 f"/catalogue/{listing_id(market, 'VCS-1067', 2021)}/quote"):
        html = text(anonymous.get(path))
        assert "<script" not in html, path
        assert not re.search(r'(src|href)="(https?:)?//', html), path


# --- home ----------------------------------------------------------------------------------


def test_the_home_page_tells_the_tambopata_story(anonymous):
    html = text(anonymous.get("/"))

    for fact in ("570,000 ha", "COOPASER", "~350", "AIDER", "40 ha", "20 ha of primary forest",
                 "≥ 3 ha", "cocoa agroforestry", "papaya", "illegal"):
        assert fact in html, fact
    assert 'href="/catalogue"' in html


def test_the_home_page_shows_live_tonnes_issued_sold_and_retired(anonymous):
    html = text(anonymous.get("/"))

    assert f"<strong>{DEMO_ISSUED:,} t</strong> issued" in html
    assert f"<strong>{DEMO_SOLD:,} t</strong> sold to buyers" in html  # the ledger's + market's
    assert f"<strong>{DEMO_RETIRED:,} t</strong> retired for good" in html


def routed_to_farms(html: str) -> str:
    return re.search(r"<strong>([^<]*)</strong>\s*routed to farming families", html).group(1)


def test_a_paid_sale_adds_the_farmers_share_to_the_money_routed_to_farms(anonymous, market):
    demo_farmers = share_of(sum(DEMO_SALES_MINOR.values()), "farmers")
    assert routed_to_farms(text(anonymous.get("/"))) == usd(demo_farmers)  # the demo's sales

    sell(market, "KAP-AF-01", 2023, 10)  # 10 t at USD 24.00: 240.00, of which 60% to farms
    settled(market)

    html = text(anonymous.get("/"))
    sale = demo_sale_minor("KAP-AF-01", 2023, 10)
    assert routed_to_farms(html) == usd(demo_farmers + share_of(sale, "farmers"))
    assert f"<strong>{DEMO_SOLD + 10:,} t</strong> sold to buyers" in html


# --- projects ------------------------------------------------------------------------------


def test_the_projects_page_lists_both_projects_with_their_labels(anonymous):
    html = text(anonymous.get("/projects"))

    assert 'href="/projects/VCS-1067"' in html and 'href="/projects/KAP-AF-01"' in html
    assert "573,299 ha" in html and "CCB" in html and "SDG 15" in html


def test_a_project_page_shows_location_area_methodology_labels_vintages_and_buffer(anonymous):
    html = text(anonymous.get("/projects/KAP-AF-01"))

    for fact in ("Madre de Dios, PE", "-12.60, -69.19", "1,300 ha", "VM0047", "CCB", "SDG 2",
                 "15%", "Agroforestry"):
        assert fact in html, fact
    for year in (2021, 2022, 2023, 2024):
        assert f"<td>{year}</td>" in html
    assert "15,000 t" in html and "2,250 t" in html  # vintage 2023 issued, 15% in the buffer


def test_a_project_page_shows_its_farms_and_what_each_receives_of_a_sale(anonymous):
    html = text(anonymous.get("/projects/KAP-AF-01"))

    for code in ("COOP-001", "COOP-002", "COOP-003", "COOP-004", "COOP-005"):
        assert code in html
    assert "Familia Huanca Flores (demo)" in html
    assert "<strong>60%</strong> to farmers" in html
    # Of USD 100.00: 25.00 to AIDER's programme, and COOP-004's 8 of 26 agroforestry hectares
    # of the farmers' 60.00.
    assert re.search(r"aider-field-programme</td><td></td><td class=\"num\">USD 25.00", html)
    assert re.search(r"farmers</td><td>COOP-004</td><td class=\"num\">USD 18.46", html)


def test_a_project_without_farms_says_where_the_farmers_share_goes(anonymous):
    html = text(anonymous.get("/projects/VCS-1067"))

    assert "No farm shares in this project" in html
    assert "<strong>60%</strong> to farmers" in html


@pytest.mark.parametrize("registry_id", ["NOPE-1", "x" * 65])
def test_an_unknown_project_is_a_404_page_that_names_it(anonymous, registry_id):
    response = anonymous.get(f"/projects/{registry_id}")

    assert response.status_code in (400, 404)
    assert response.mimetype == "text/html"
    assert "project" in text(response)


# --- catalogue -----------------------------------------------------------------------------


def test_the_catalogue_shows_each_listing_with_its_terms(anonymous, market):
    html = text(anonymous.get("/catalogue"))

    assert len(quote_links(html)) == 3
    for fact in ("USD 14.00", "from 1,000 t: USD 12.50", "USD 24.00", "from 500 t: USD 22.00",
                 "10%", "15%", "CCB"):
        assert fact in html, fact
    # Available: what each listing offers less what the demo's sales took from it.
    rows = {re.search(r'href="/catalogue/([0-9a-f-]{36})/quote"', row).group(1): row
            for row in re.findall(r"<tr>(?:(?!</tr>).)*?/quote\"(?:(?!</tr>).)*?</tr>", html, re.S)}
    for project, vintage, *_ in LISTINGS:
        row = rows[listing_id(market, project, vintage)]
        assert f'<td class="num">{available(project, vintage):,} t</td>' in row, (project, vintage)


def test_filtering_by_project_shows_only_that_projects_listings(anonymous, market):
    html = text(anonymous.get("/catalogue?project=VCS-1067"))

    assert sorted(quote_links(html)) == sorted([listing_id(market, "VCS-1067", 2021),
                                                listing_id(market, "VCS-1067", 2022)])


def test_filtering_by_vintage_and_by_highest_price(anonymous, market):
    by_vintage = quote_links(text(anonymous.get("/catalogue?vintage=2023")))
    by_price = quote_links(text(anonymous.get("/catalogue?max_price=14.50")))

    assert by_vintage == [listing_id(market, "KAP-AF-01", 2023)]
    assert by_price == [listing_id(market, "VCS-1067", 2021)]
    assert "No listing matches" in text(anonymous.get("/catalogue?max_price=1"))


@pytest.mark.parametrize("query, message", [
    ("vintage=abc", "vintage is a year"),
    ("max_price=-1", "max price is a positive amount"),
    ("max_price=cheap", "max price is a positive amount"),
    ("max_price=NaN", "max price is a positive amount"),
    ("page=0", "page must be a whole number"),
    ("page=two", "page must be a whole number"),
    ("page=²", "page must be a whole number"),  # a digit to str.isdigit, not to int()
    ("vintage=２０２１", "vintage is a year"),
])
def test_unreadable_catalogue_filters_are_a_400_with_a_message(anonymous, query, message):
    response = anonymous.get(f"/catalogue?{query}")

    assert response.status_code == 400
    assert message in text(response)


def test_the_catalogue_shows_twenty_listings_a_page(anonymous, market):
    for number in range(22):  # 25 listings in all
        market.create_listing("VCS-1067", 2020, "ecosphere-verra", Decimal("16.00"), "USD",
                              100 + number)

    first = text(anonymous.get("/catalogue"))
    second = text(anonymous.get("/catalogue?page=2"))

    assert len(quote_links(first)) == 20 and len(quote_links(second)) == 5
    assert not set(quote_links(first)) & set(quote_links(second))
    assert "Page 1 of 2" in first and 'href="/catalogue?page=2' in first
    assert anonymous.get("/catalogue?page=3").status_code == 404


# --- price calculator ----------------------------------------------------------------------


def test_the_price_calculator_form_is_public(anonymous, market):
    response = anonymous.get(f"/catalogue/{listing_id(market, 'VCS-1067', 2021)}/quote")

    assert response.status_code == 200
    assert 'name="csrf_token"' in text(response) and 'name="electricity_kwh"' in text(response)


def test_a_quote_by_tonnes_takes_the_volume_tier_price(anonymous, market):
    html = text(quote(anonymous, market, {"by": "tonnes", "tonnes": "1,200"}))

    assert '<strong class="quote-tonnes">1,200 t</strong>' in html
    assert "USD 12.50 (volume price)" in html
    assert '<strong class="quote-total">USD 15,000.00</strong>' in html
    assert "Valid until" in html


def test_a_quote_by_money_buys_the_most_whole_tonnes_within_the_budget(anonymous, market):
    html = text(quote(anonymous, market, {"by": "amount", "amount": "1,000.00"}))

    assert '<strong class="quote-tonnes">71 t</strong>' in html  # 71 x 14.00 = 994.00
    assert '<strong class="quote-total">USD 994.00</strong>' in html


def test_a_quote_by_emissions_offsets_the_estimate_rounded_up(anonymous, market):
    html = text(quote(anonymous, market, {
        "by": "estimate", "electricity_kwh": "12000", "electricity_country": "PE",
        "flight_passenger_km": "5000", "flight_haul": "long", "flight_cabin": "business",
        "freight_tonne_km": "", "fuel_litres": "100", "fuel_type": "diesel"}))

    # 3,020.9 kg (Peru's grid) + 1,697.0 kg (long-haul business) + about 260 kg of diesel
    assert re.search(r"about <strong>4,9\d\d\.\d kg CO2e</strong>", html)
    assert '<strong class="quote-tonnes">5 t</strong>' in html
    assert '<strong class="quote-total">USD 70.00</strong>' in html


@pytest.mark.parametrize("data, message", [
    ({"by": "tonnes", "tonnes": "-3"}, "buy at least 1 tonne"),
    ({"by": "tonnes", "tonnes": "0"}, "buy at least 1 tonne"),
    ({"by": "tonnes", "tonnes": "ten"}, "tonnes must be a whole number"),
    ({"by": "tonnes", "tonnes": "2.5"}, "tonnes must be a whole number"),
    ({"by": "tonnes", "tonnes": "1e3"}, "tonnes must be a whole number"),
    ({"by": "tonnes", "tonnes": "9" * 30}, "at most 1,000,000,000,000 tonnes"),
    ({"by": "tonnes", "tonnes": "9" * 13}, "at most 1,000,000,000,000 tonnes"),
    ({"by": "tonnes", "tonnes": ""}, "enter how many tonnes"),
    ({"by": "amount", "amount": "-50"}, "may not be negative"),
    ({"by": "amount", "amount": "lots"}, "not an amount"),
    ({"by": "amount", "amount": "0"}, "must be more than 0"),
    ({"by": "amount", "amount": "5"}, "buys no tonnes"),
    ({"by": "amount", "amount": "10.005"}, "decimal places"),
    ({"by": "estimate"}, "fill in at least one activity"),
    ({"by": "estimate", "electricity_kwh": "-10", "electricity_country": "PE"}, "negative"),
    ({"by": "estimate", "electricity_kwh": "100", "electricity_country": "XX"}, "no electricity factor"),
    ({"by": "estimate", "fuel_litres": "1e400", "fuel_type": "diesel"}, "more than"),
    ({"by": "guess"}, "choose how to price"),
])
def test_bad_quote_input_is_a_400_with_a_message_never_a_500(anonymous, market, data, message):
    response = quote(anonymous, market, data)

    assert response.status_code == 400
    assert message in text(response)
    assert "quote-total" not in text(response)


def test_more_tonnes_than_available_is_refused_as_a_conflict(anonymous, market):
    response = quote(anonymous, market, {"by": "tonnes", "tonnes": "50001"})

    assert response.status_code == 409
    assert "available" in text(response)


@pytest.mark.parametrize("listing", ["00000000-0000-0000-0000-000000000000", "not-a-listing"])
def test_pricing_an_unknown_listing_is_a_404(anonymous, listing):
    response = anonymous.get(f"/catalogue/{listing}/quote")

    assert response.status_code == 404
    assert "no listing" in text(response)


def test_a_quote_without_the_csrf_token_is_refused(anonymous, market):
    response = anonymous.post(f"/catalogue/{listing_id(market, 'VCS-1067', 2021)}/quote",
                              data={"by": "tonnes", "tonnes": "5"})

    assert response.status_code == 400


def test_a_buyer_gets_a_form_to_buy_exactly_the_quoted_tonnes(buyer, market):
    html = text(quote(buyer, market, {"by": "tonnes", "tonnes": "25"}))
    form = html[html.index('<form method="post" action="/my/orders"'):]
    form = form[:form.index("</form>")]

    assert f'name="listing_id" value="{listing_id(market, "VCS-1067", 2021)}"' in form
    assert 'name="tonnes" value="25"' in form
    assert 'name="retire_now"' in form and 'name="csrf_token"' in form
    assert "Buy these credits" in form


def test_an_anonymous_visitor_is_asked_to_log_in_to_buy(anonymous, market):
    html = text(quote(anonymous, market, {"by": "tonnes", "tonnes": "25"}))

    assert 'action="/my/orders"' not in html
    assert "Log in to buy these credits" in html


# --- retirement registry -------------------------------------------------------------------


def test_the_registry_lists_the_demo_retirement(anonymous, market):
    html = text(anonymous.get("/registry"))

    assert demo_retirement_id(market) in html
    assert "Andes Coffee Roasters S.A.C." in html and "VCS-1067 2019" in html
    assert "120 t" in html and "Corporate Emissions Inventory Accounting" in html


def market_sale_retirement_id(market) -> str:
    """The retirement of the demo's sale retired at once for Andes Coffee Roasters S.A.C. (a
    VCS-1067 2022 vintage): the only retirement after the ledger demo's."""
    rows = market.caught_up_view().recorder.query(
        "SELECT retirement_id, beneficiary, quantity FROM kapok_retirements ORDER BY position", {})
    retired_sales = [(beneficiary, tonnes) for *_, tonnes, _, beneficiary in SALES if beneficiary]
    assert [(row["beneficiary"], row["quantity"]) for row in rows[1:]] == retired_sales
    return rows[1]["retirement_id"]


# The beneficiary and the project match the demo's sale retired at once as well (the same
# beneficiary, VCS-1067 2022); the serials are of the ledger demo's 2019 retirement only.
@pytest.mark.parametrize("search, also_the_sale", [
    ("andes coffee", True), ("ROASTERS", True), ("VCS-1067", True), ("612001550", False),
    ("612001600-612001800", False), (DEMO_RETIRED_SERIAL, False),
])
def test_the_registry_finds_a_retirement_by_beneficiary_project_or_serial(anonymous, market,
                                                                           search, also_the_sale):
    html = text(anonymous.get("/registry", query_string={"q": search}))

    assert demo_retirement_id(market) in html
    assert (market_sale_retirement_id(market) in html) is also_the_sale
    if also_the_sale:
        assert "2 retirements matching" in html
    else:
        assert "1 retirement matching" in html


def test_the_registry_finds_a_retirement_by_its_id_in_any_case(anonymous, market):
    retirement_id = demo_retirement_id(market)

    html = text(anonymous.get("/registry", query_string={"q": retirement_id.lower()}))

    assert retirement_id in html


@pytest.mark.parametrize("search", ["Lima Logistics", "KAP-AF-01", "1000121", "%", "_"])
def test_a_search_that_matches_nothing_finds_nothing(anonymous, market, search):
    html = text(anonymous.get("/registry", query_string={"q": search}))

    assert demo_retirement_id(market) not in html
    assert "No retirement matches" in html


def test_the_registry_narrows_to_one_project(anonymous, market):
    market.ledger.retire(ANDES_ACCOUNT, RetirementClaim("Andes Coffee Roasters S.A.C.", "Other"),
                         quantity=1)
    sell(market, "KAP-AF-01", 2023, 3)
    market.ledger.retire(ANDES_ACCOUNT, RetirementClaim("Cocoa buyer", "Other"),
                         serials=_serials_of(market, "KAP-AF-01"))
    settled(market)

    html = text(anonymous.get("/registry?q=&project=KAP-AF-01"))

    assert "Cocoa buyer" in html and "Andes Coffee Roasters S.A.C." not in html


def _serials_of(market, project: str):
    from ledger.domain.serials import SerialRange

    block = next(block for block in market.ledger.get_account(ANDES_ACCOUNT).blocks
                 if block.project == project)
    return SerialRange(block.first, block.last)


def test_a_beneficiary_name_is_shown_as_text_never_as_markup(anonymous, market):
    hostile = '<script>alert("kapok")</script> Ltd'
    retired = market.ledger.retire(
        ANDES_ACCOUNT, RetirementClaim(hostile, "Other", details=hostile), quantity=2)
    settled(market)

    for path in ("/registry", f"/registry/{retired['retirement_id']}",
                 "/registry?q=" + "%3Cscript%3E"):
        html = text(anonymous.get(path))
        assert "<script>" not in html, path
        assert "&lt;script&gt;alert(&#34;kapok&#34;)&lt;/script&gt; Ltd" in html, path


def test_the_registry_shows_twenty_retirements_a_page_newest_first(anonymous, market):
    ids = [market.ledger.retire(ANDES_ACCOUNT, RetirementClaim(f"Beneficiary {n}", "Other"),
                                quantity=1)["retirement_id"]
           for n in range(21)]  # 22 with the demo's
    settled(market)

    first = text(anonymous.get("/registry"))
    second = text(anonymous.get("/registry?page=2"))

    assert ids[-1] in first and ids[0] not in first
    assert ids[0] in second and demo_retirement_id(market) in second
    assert "Page 2 of 2" in second
    assert anonymous.get("/registry?page=3").status_code == 404


def test_a_retirement_has_a_permanent_page_with_its_claim_and_serials(anonymous, market):
    retirement_id = demo_retirement_id(market)

    html = text(anonymous.get(f"/registry/{retirement_id}"))

    for fact in ("Andes Coffee Roasters S.A.C.", "120 t", DEMO_RETIRED_SERIAL,
                 'href="/projects/VCS-1067"', "<td>2019</td>",
                 "Corporate Emissions Inventory Accounting", "2025 roasting operations (demo)",
                 "2025-01-01 to 2025-12-31", "offset · voluntary use", "Retired on"):
        assert fact in html, fact


def test_a_retirement_page_links_its_proof_and_explains_how_to_check_it(anonymous, market):
    retirement_id = demo_retirement_id(market)

    html = text(anonymous.get(f"/registry/{retirement_id}"))

    assert f'href="/audit/proofs/{retirement_id}.json"' in html
    assert 'href="/audit/public-key.pem"' in html
    assert "ledger/audit/verifier.py" in html
    assert f"python verifier.py {retirement_id}.json --public-key public-key.pem" in html


def test_a_retirement_page_links_the_small_verifier_and_the_key_it_takes(anonymous, market):
    retirement_id = demo_retirement_id(market)

    html = text(anonymous.get(f"/registry/{retirement_id}"))
    script = anonymous.get("/audit/verify_retirement.py")

    assert 'href="/audit/verify_retirement.py"' in html and 'href="/audit/verifier-key"' in html
    assert f"python verify_retirement.py {retirement_id}.json" in html
    assert script.status_code == 200 and script.mimetype == "text/x-python"
    assert b"def verify(doc, key)" in script.data


def test_the_linked_proof_is_served_as_json_once_the_log_is_signed(anonymous, market,
                                                                   tmp_path, monkeypatch):
    from ledger.audit.keys import SigningKey, generate_key
    from ledger.audit.log import AuditLog
    from ledger.audit.verifier import verify_proof_file

    key_file = tmp_path / "proof-keys" / "tree.pem"
    monkeypatch.setenv("KAPOK_SIGNING_KEY_FILE", str(key_file))
    generate_key(key_file)
    retirement_id = demo_retirement_id(market)
    html = text(anonymous.get(f"/registry/{retirement_id}"))
    proof_url = re.search(r'href="(/audit/proofs/[^"]+\.json)"', html).group(1)
    # Before the log is signed past the retirement: a 404 that says when to come back.
    early = anonymous.get(proof_url)
    assert early.status_code == 404 and early.headers["Retry-After"] == "60"
    assert "not yet under a signed tree head" in early.json["message"]
    assert "within minutes" in early.json["message"]
    AuditLog(market).follow(SigningKey.load(key_file))

    proof = anonymous.get(proof_url)

    assert proof.status_code == 200 and proof.mimetype == "application/json"
    assert json.loads(proof.data)["kind"] == "kapok-inclusion-proof-v1"
    assert verify_proof_file(proof.json, key_file.with_name("tree.pub.pem").read_bytes()) == []


@pytest.mark.parametrize("retirement_id", ["KAP-RET-NOPE", "x" * 200])
def test_an_unknown_retirement_is_a_4xx_page(anonymous, retirement_id):
    response = anonymous.get(f"/registry/{retirement_id}")

    assert response.status_code in (400, 404)
    assert "retirement" in text(response)


# --- transparency --------------------------------------------------------------------------


def test_the_transparency_page_draws_tonnes_over_time_as_inline_svg(anonymous):
    html = text(anonymous.get("/transparency"))
    tonnes_part = html[html.index("<h2>Tonnes over time</h2>"):html.index("<h2>Money routed</h2>")]

    assert tonnes_part.count("<svg") == 3  # issued, sold and retired (the money has its own)
    assert "Tonnes issued per month" in tonnes_part
    for figure in (DEMO_ISSUED, DEMO_SOLD, DEMO_RETIRED):
        assert f">{figure:,} t</text>" in tonnes_part, figure


@pytest.fixture
def unsold_store(tmp_path, monkeypatch):
    """A client of a fresh store with the whole demo but its sales and payout: projects,
    issuances, listings, rules and farms, and not one sale paid through the market."""
    url = f"sqlite:///{tmp_path}/unsold.db"
    market = Marketplace(database=url)
    sales = {label for label, *_ in SALES}
    for label, step in demo_steps(market.ledger) + market_demo_steps(market):
        if label not in sales and not label.startswith("payout"):
            step()
    assert market.listings() and not market.proceeds("USD").has_entries
    market.close()
    monkeypatch.setenv("KAPOK_SIGNING_KEY_FILE", str(tmp_path / "unsold-keys" / "key.pem"))
    app = create_app({"TESTING": True, "DATABASE_URL": url, "SECRET_KEY": "test-secret-key"})
    yield app.test_client()
    app.extensions["kapok_market"].close()
    app.extensions["kapok_identity"].close()


def test_the_transparency_page_says_when_no_sale_was_paid_yet(unsold_store, anonymous):
    html = text(unsold_store.get("/transparency"))

    assert "No sale has been paid through Kapok yet" in html
    assert "Money allocated per project" not in html
    # ...and stops saying so once a sale is paid (the demo's are).
    assert "No sale has been paid through Kapok yet" not in text(anonymous.get("/transparency"))


def test_the_transparency_page_shows_money_per_project_and_farm_and_owed_against_paid(
        anonymous, market):
    sell(market, "KAP-AF-01", 2023, 10)  # USD 240.00: 144.00 farms, 60.00 AIDER, 36.00 fee
    market.record_payout("USD", "aider-field-programme", None, 1000, market.now().date(),
                         "bank transfer 1")

    html = text(anonymous.get("/transparency"))

    assert "Money allocated per project (USD)" in html
    sale = demo_sale_minor("KAP-AF-01", 2023, 10)
    kap_af = DEMO_SALES_MINOR["KAP-AF-01"] + sale  # the demo's sale and this one
    assert re.search(rf">KAP-AF-01</text>.*?>{usd(kap_af)}</text>", html)
    assert re.search(rf">VCS-1067</text>.*?>{usd(DEMO_SALES_MINOR['VCS-1067'])}</text>", html)
    assert "COOP-004 Familia Huanca Flores (demo)" in html
    # AIDER: 10.00 paid out; still owed, its share of every sale less that.
    aider_owed = share_of(sum(DEMO_SALES_MINOR.values()) + sale, "aider-field-programme") - 1000
    assert f">USD 10.00 · {usd(aider_owed)}</text>" in html
    # COOP-004: the demo's payout of USD 500.00 against what its hectares were allocated.
    assert re.search(r">COOP-004</text>[^·]*>USD 500\.00 · USD [\d,]+\.\d\d</text>", html)
    assert "<script" not in html


def test_a_warm_catalogue_reads_no_aggregate_while_the_store_has_not_moved(
        anonymous, market, monkeypatch):
    import ledger.adapters.store

    assert anonymous.get("/catalogue").status_code == 200  # this worker has read them once
    reads = []
    repository = market.store.repository
    get, batch = repository.get, ledger.adapters.store.events_after
    monkeypatch.setattr(repository, "get", lambda *args, **kwargs: (
        reads.append(args), get(*args, **kwargs))[1])
    monkeypatch.setattr(ledger.adapters.store, "events_after", lambda *args, **kwargs: (
        reads.append(args), batch(*args, **kwargs))[1])
    catalogue, listings = anonymous.get("/catalogue"), anonymous.get("/api/v1/listings")
    assert (catalogue.status_code, listings.status_code) == (200, 200)
    assert "VCS-1067" in catalogue.get_data(as_text=True)
    assert reads == []
