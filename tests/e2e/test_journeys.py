"""Whole journeys through the site in headless Chromium, one person's story each: a new
company buys, pays and retires; an operator issues and lists; an auditor verifies; a hostile
beneficiary name stays text. The screenshots in the README are taken on the way."""

from __future__ import annotations

import json
import re
from pathlib import Path

from playwright.sync_api import expect

from tests.e2e.conftest import log_in, screenshot
from tests.web.conftest import LOGINS

HOSTILE = "<script>alert(1)</script> & <img src=x onerror=alert(1)>"
RETIREMENT_ID = re.compile(r"KAP-RET-[A-Za-z0-9-]+")


def calculate(page, by: str, value: str) -> None:
    """Prices the listing on the quote page by tonnes or by a budget."""
    page.check(f"input[name=by][value={by}]")
    page.fill(f"input[name={by}]", value)
    page.click("button:has-text('Calculate the price')")


def test_a_new_company_buys_pays_retires_and_shows_the_public_record(page, sign_tree_heads):
    # Maria opens an account for her company from the home page.
    page.goto("/")
    screenshot(page, "home")
    page.click("header >> text=Sign up")
    page.fill("input[name=organisation]", "Cusco Chocolate Works")
    page.fill("input[name=name]", "Maria Condori")
    page.fill("input[name=email]", "maria@cusco-chocolate.example")
    page.fill("input[name=password]", "a long cocoa passphrase")
    page.fill("input[name=confirm]", "a long cocoa passphrase")
    page.click("main form button[type=submit]")
    expect(page.locator("header .who")).to_contain_text("Cusco Chocolate Works")

    # She finds the 2022 vintage of VCS-1067 in the catalogue and opens its price calculator.
    page.click("header nav >> text=Buy credits")
    expect(page.locator("h1")).to_have_text("Buy credits")
    screenshot(page, "catalogue")
    row = page.locator("table.catalogue tbody tr").filter(has_text="VCS-1067").filter(
        has_text="2022")
    row.get_by_role("link", name="Price it").click()
    expect(page.locator("h1")).to_have_text("Price calculator")

    # She prices 120 t, then what a budget of USD 3,000 buys at USD 15.00 a tonne.
    calculate(page, "tonnes", "120")
    expect(page.locator(".quote-tonnes")).to_have_text("120 t")
    expect(page.locator(".quote-total")).to_have_text("USD 1,800.00")
    calculate(page, "amount", "3,000")
    expect(page.locator(".quote-tonnes")).to_have_text("200 t")
    expect(page.locator(".quote-total")).to_have_text("USD 3,000.00")
    screenshot(page, "quote")

    # She buys the 200 t and pays with the demo's test card: the order is fulfilled.
    page.click("button:has-text('Buy these credits')")
    expect(page.locator("h1 .state")).to_have_text("reserved")
    page.click("button:has-text('Pay with test card')")
    expect(page.locator("h1 .state")).to_have_text("fulfilled")
    expect(page.locator(".checkout")).to_contain_text("Paid and delivered")
    screenshot(page, "order-fulfilled")

    # The tonnes are in the portfolio; she retires 50 of them for the company's flights.
    page.click(".checkout >> text=portfolio")
    holdings = page.locator("table.holdings")
    expect(holdings.locator("tbody tr").filter(has_text="VCS-1067")).to_contain_text("200")
    page.fill("input[name=quantity]", "50")
    page.fill("input[name=beneficiary]", "Cusco Chocolate Works, 2025 business flights")
    page.click("button:has-text('Retire for good')")
    expect(page.locator(".flash.success")).to_contain_text("50 t retired for Cusco Chocolate")
    retirement_id = RETIREMENT_ID.search(page.inner_text(".flash.success")).group(0)
    expect(holdings.locator("tfoot")).to_contain_text("150")
    screenshot(page, "portfolio")

    # She downloads the certificate: a real PDF.
    retired = page.locator("table.retirements tbody tr").filter(has_text=retirement_id)
    with page.expect_download() as download:
        retired.get_by_role("link", name="Certificate (PDF)").click()
    pdf = Path(download.value.path()).read_bytes()
    assert pdf.startswith(b"%PDF") and 2_000 < len(pdf) < 2_000_000, len(pdf)

    # The audit worker signs the log; the public record names the beneficiary and links a proof.
    sign_tree_heads()
    retired.get_by_role("link", name="public record").click()
    expect(page.locator("h1")).to_have_text("50 t retired for Cusco Chocolate Works, "
                                            "2025 business flights")
    screenshot(page, "registry-entry")
    proof_link = page.get_by_role("link", name=re.compile("Inclusion proof"))
    proof = page.request.get(proof_link.get_attribute("href"))
    assert proof.ok and proof.headers["content-type"].startswith("application/json")
    assert retirement_id in json.dumps(proof.json()["event"]["decoded"])


def test_the_checkout_page_shows_a_payment_confirmed_elsewhere_by_itself(page, live_server):
    # Rosa reserves 10 t; the payment then arrives from outside the browser (as a provider's
    # webhook would), and the open checkout page notices it without being reloaded.
    log_in(page, *LOGINS["buyer"])
    page.goto("/catalogue")
    page.locator("table.catalogue tbody tr").filter(has_text="KAP-AF-01").get_by_role(
        "link", name="Price it").first.click()
    calculate(page, "tonnes", "10")
    page.click("button:has-text('Buy these credits')")
    expect(page.locator("h1 .state")).to_have_text("reserved")
    order_id = page.inner_text("h1 .mono")
    live_server.app.extensions["kapok_market"].pay_offline(order_id)
    expect(page.locator("h1 .state")).to_have_text("fulfilled", timeout=10_000)


def test_an_operator_issues_a_new_vintage_and_lists_it_in_the_catalogue(page):
    log_in(page, *LOGINS["operator"])
    page.click("header nav >> text=Console")
    screenshot(page, "console-dashboard")

    # Elena adds the 2025 vintage to KAP-AF-01, Kapok's own project, and issues it.
    page.click(".console-nav >> text=Projects")
    page.get_by_role("link", name="KAP-AF-01").first.click()
    vintage_form = page.locator("form", has_text="Add a vintage")
    vintage_form.locator("input[name=year]").fill("2025")
    vintage_form.locator("input[name=vintage_labels]").fill("CCB")
    vintage_form.get_by_role("button", name="Add vintage").click()
    expect(page.locator(".flash.success")).to_contain_text("Vintage 2025 added")
    issue_form = page.locator("form", has_text="Issue credits")
    issue_form.locator("select[name=vintage]").select_option("2025")
    issue_form.locator("input[name=quantity]").fill("20000")
    issue_form.get_by_role("button", name="Issue").click()
    expect(page.locator(".flash.success")).to_contain_text("Issued 20,000 t")

    # She lists 10,000 t of it at USD 16.50, USD 15.00 from 1,000 t.
    page.click(".console-nav >> text=Listings")
    page.click("text=List credits")
    page.select_option("select[name=project]", "KAP-AF-01")
    page.fill("input[name=vintage]", "2025")
    page.select_option("select[name=inventory_account]", "ecosphere-inventory")
    page.fill("input[name=price_per_tonne]", "16.50")
    page.select_option("select[name=currency]", "USD")
    page.fill("input[name=on_offer]", "10000")
    page.fill("textarea[name=tiers]", "1000 15.00")
    page.click("button:has-text('Create listing')")
    expect(page.locator(".flash.success")).to_contain_text("created")
    expect(page.locator("table.listings")).to_contain_text("KAP-AF-01 · 2025")
    screenshot(page, "console-listings")

    # Buyers see it in the public catalogue.
    page.click("header nav >> text=Buy credits")
    listed = page.locator("table.catalogue tbody tr").filter(has_text="KAP-AF-01").filter(
        has_text="2025")
    expect(listed).to_contain_text("USD 16.50")
    expect(listed).to_contain_text("10,000 t")


def test_an_auditor_verifies_the_signed_log_and_sees_ok(page, sign_tree_heads):
    sign_tree_heads()  # the audit worker has logged the demo under a signed head
    log_in(page, *LOGINS["auditor"])
    page.click("header nav >> text=Audit")
    page.click(".audit-nav >> text=Verify")
    page.click("main form button:has-text('Verify')")
    expect(page.locator(".audit-ok")).to_have_text("OK")
    expect(page.locator(".audit-report")).not_to_contain_text("not under a signed head")
    screenshot(page, "auditor-verify")


def test_a_hostile_beneficiary_name_is_shown_as_text_everywhere(page):
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    # Rosa retires 1 t on behalf of a name made of HTML.
    log_in(page, *LOGINS["buyer"])
    page.goto("/my/portfolio")
    page.fill("input[name=quantity]", "1")
    page.fill("input[name=beneficiary]", HOSTILE)
    page.click("button:has-text('Retire for good')")
    expect(page.locator(".flash.success")).to_contain_text(HOSTILE)
    retirement_id = RETIREMENT_ID.search(page.inner_text(".flash.success")).group(0)

    # The portfolio, the public registry and the retirement's page all show it literally.
    retired = page.locator("table.retirements tbody tr").filter(has_text=retirement_id)
    expect(retired).to_contain_text(HOSTILE)
    page.goto(f"/registry?q={retirement_id}")
    expect(page.locator("table.registry tbody tr").first).to_contain_text(HOSTILE)
    page.get_by_role("link", name=retirement_id).click()
    expect(page.locator("h1")).to_contain_text(HOSTILE)
    expect(page.locator("dl.facts")).to_contain_text(HOSTILE)
    assert page.locator("main script, main img").count() == 0
    assert dialogs == []


def test_a_visitor_reads_where_the_money_goes_and_the_api_documentation(page):
    page.goto("/")
    page.click("header nav >> text=Where the money goes")
    expect(page.locator("main svg").first).to_be_visible()
    # Every label and figure of every chart is drawn inside its chart, none cut off.
    clipped = page.evaluate("""() => [...document.querySelectorAll('svg.chart text')]
        .filter(text => { const box = text.getBBox(), width = text.ownerSVGElement.viewBox.baseVal.width;
                          return box.x < 0 || box.x + box.width > width; })
        .map(text => text.textContent)""")
    assert clipped == []
    screenshot(page, "transparency")
    page.click("footer >> text=API")
    expect(page.locator("#swagger-ui .info .title")).to_contain_text("Kapok")
    screenshot(page, "api-docs")
