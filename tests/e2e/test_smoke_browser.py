"""The site in a real browser: pages load with no script or CSP errors, and log-in works."""

from __future__ import annotations

from tests.e2e.conftest import log_in
from tests.web.conftest import LOGINS


def test_the_home_page_loads_in_chromium_without_errors(page):
    response = page.goto("/")
    assert response.status == 200
    assert "Tambopata" in page.title()


def test_a_buyer_logs_in_and_out_in_the_browser(page):
    log_in(page, *LOGINS["buyer"])
    assert "Rosa Quispe" in page.inner_text("header")
    page.click("header button:has-text('Log out')")
    page.wait_for_load_state()
    assert "Log in" in page.inner_text("header")
