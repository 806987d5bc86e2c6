"""Browser tests: the real app served over HTTP on 127.0.0.1, driven in Debian's headless
Chromium by Playwright (``executable_path``: Playwright never downloads a browser here).

Chromium is found at KAPOK_CHROMIUM (default /usr/bin/chromium); `.ci/run` installs it. When
it is missing the tests skip locally and fail in CI, like the PostgreSQL tests."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from ledger.audit.keys import SigningKey, generate_key, signing_key_file
from ledger.audit.log import AuditLog
from testbed.stores import seed_demo
from tests.conftest import IN_CI, view_worker
from web import create_app

CHROMIUM = os.environ.get("KAPOK_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
# Without these, Chromium reaches for Google's services, which this closed network refuses.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage"]


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not Path(CHROMIUM).exists():
        message = f"Chromium not found at {CHROMIUM}: apt-get install chromium (or set KAPOK_CHROMIUM)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


@pytest.fixture(scope="session")
def browser(chromium_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class LiveServer:
    def __init__(self, app):
        self.app = app
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.thread.join(5)


@pytest.fixture(scope="session")
def seeded_store(tmp_path_factory) -> Path:
    """The demo stores, seeded once per session: each live server serves a copy."""
    folder = tmp_path_factory.mktemp("seeded")
    seed_demo(f"sqlite:///{folder}/kapok.db")
    return folder


@pytest.fixture
def live_server(seeded_store, tmp_path, monkeypatch):
    """Kapok on the seeded demo store (its own copy), served on a free port."""
    monkeypatch.setenv("KAPOK_SIGNING_KEY_FILE", str(tmp_path / "keys" / "signing-key.pem"))
    for name in ("kapok.db", "kapok-identity.db"):
        shutil.copy(seeded_store / name, tmp_path / name)
    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path}/kapok.db",
                      "SECRET_KEY": "browser-tests", "KAPOK_ENV": "development",
                      "LOGIN_ATTEMPTS_PER_MINUTE": 1000})
    with view_worker(app.extensions["kapok_market"]), LiveServer(app) as server:
        yield server
    app.extensions["kapok_market"].close()
    app.extensions["kapok_identity"].close()


@pytest.fixture
def sign_tree_heads(live_server):
    """Signs a tree head over every event stored so far when called, as the audit worker
    would; the server's signing key is made on first use."""
    path = signing_key_file()  # the live server's KAPOK_SIGNING_KEY_FILE
    generate_key(path)
    key = SigningKey.load(path)
    return lambda: AuditLog(live_server.app.extensions["kapok_market"]).follow(key)


@contextlib.contextmanager
def browser_page(browser, base_url: str):
    """A page of a fresh browser context on ``base_url``, and the list where the page's
    script errors and console errors (a CSP violation among them) are collected."""
    context = browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 900},
                                  accept_downloads=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: errors.append(message.text)
            if message.type == "error" else None)
    try:
        yield page, errors
    finally:
        context.close()


@pytest.fixture
def page(browser, live_server):
    with browser_page(browser, live_server.url) as (page, errors):
        yield page
    # A page that breaks its own scripts or violates the CSP shows up here.
    assert errors == [], errors


def screenshot(page, name: str) -> None:
    """Takes a full-page screenshot (so the page is rendered whole). It replaces the README's
    copy in docs/screenshots only with KAPOK_SCREENSHOTS=1: ids and times differ every run,
    and a test run should not leave the working tree changed."""
    folder = SCREENSHOTS if os.environ.get("KAPOK_SCREENSHOTS") == "1" else \
        Path(tempfile.gettempdir()) / "kapok-screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def log_in(page, email: str, password: str) -> None:
    page.goto("/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("form button[type=submit]")
    page.wait_for_load_state()


