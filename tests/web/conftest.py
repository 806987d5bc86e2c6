"""Fixtures for the web tier: an app on the seeded demo store, and clients signed in as each
kind of user. The demo is seeded once per session and copied for every test (SQLite), so
each test starts from the same state and may change it freely."""

from __future__ import annotations

import re
import shutil
from decimal import Decimal

import pytest

from ledger.demo import INVENTORY, demo_steps
from market.application import Marketplace
from market.demo import market_demo_steps
from web import create_app
from web.demo import AUDITOR_LOGIN, BUYER_LOGIN, OPERATOR_LOGIN, OTHER_BUYER_LOGIN, seed_people
from tests.conftest import view_worker
from identity.application import Identity

LOGINS = {
    "buyer": BUYER_LOGIN,  # Andes Coffee Roasters (org A)
    "other_buyer": OTHER_BUYER_LOGIN,  # Lima Logistics (org B)
    "operator": OPERATOR_LOGIN,
    "auditor": AUDITOR_LOGIN,
}
ORG_A, ORG_B = "andes-coffee-roasters", "lima-logistics"
_CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|'
                   r'name="csrf_token" value="([^"]+)"')


def seed_demo(database_url: str) -> None:
    market = Marketplace(database=database_url)
    for _label, step in demo_steps(market.ledger) + market_demo_steps(market):
        step()
    market.caught_up_view()
    market.close()
    identity = Identity(database_url)
    seed_people(identity)
    identity.close()


def store_with_buyers(database_url: str, buyers: int, on_offer: int) -> tuple[str, list[str]]:
    """The demo on ``database_url`` with a listing of ``on_offer`` tonnes of KAP-AF-01 2022 at
    USD 18.00, and ``buyers`` organisations of one buyer each: the listing and their tokens."""
    seed_demo(database_url)
    market = Marketplace(database=database_url)
    listing = market.create_listing("KAP-AF-01", 2022, INVENTORY, Decimal("18.00"), "USD",
                                    on_offer)["listing_id"]
    market.close()
    identity = Identity(database_url)
    tokens = []
    for n in range(buyers):
        email = f"buyer{n}@company{n}.example"
        identity.sign_up(f"Company {n}", f"Buyer {n}", email, "a long passphrase")
        tokens.append(identity.issue_token(email, "tests"))
    identity.close()
    return listing, tokens


@pytest.fixture(scope="session")
def seeded_template(tmp_path_factory):
    folder = tmp_path_factory.mktemp("seeded")
    seed_demo(f"sqlite:///{folder}/kapok.db")
    return folder


@pytest.fixture
def store_url(seeded_template, tmp_path):
    """A copy of the seeded demo store for this test only (SQLite)."""
    for name in ("kapok.db", "kapok-identity.db"):
        shutil.copy(seeded_template / name, tmp_path / name)
    return f"sqlite:///{tmp_path}/kapok.db"


def served(database_url: str, tmp_path, monkeypatch, worker: bool = True):
    """Yields the app on ``database_url`` for one test (with the worker's projection beside
    it unless ``worker`` is false), and closes its stores afterwards."""
    # The audit key lives outside the store; each test gets its own (made on first use).
    monkeypatch.setenv("KAPOK_SIGNING_KEY_FILE", str(tmp_path / "keys" / "signing-key.pem"))
    app = create_app({"TESTING": True, "DATABASE_URL": database_url,
                      "SECRET_KEY": "test-secret-key", "LOGIN_ATTEMPTS_PER_MINUTE": 1000,
                      "ADDRESS_ATTEMPTS_PER_MINUTE": 1000})
    if worker:
        with view_worker(app.extensions["kapok_market"]):
            yield app
    else:
        yield app
    app.extensions["kapok_market"].close()
    app.extensions["kapok_identity"].close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def two_identity_workers(request):
    """Two Identity instances over one empty store, as two gunicorn workers have: SQLite,
    then PostgreSQL."""
    url = request.getfixturevalue(f"{request.param}_url")
    workers = Identity(url), Identity(url)
    yield workers
    for worker in workers:
        worker.close()


@pytest.fixture
def app(store_url, tmp_path, monkeypatch):
    yield from served(store_url, tmp_path, monkeypatch)


@pytest.fixture
def market(app) -> Marketplace:
    return app.extensions["kapok_market"]


@pytest.fixture
def identity(app) -> Identity:
    return app.extensions["kapok_identity"]


def csrf_token(client, path: str = "/login") -> str:
    """The CSRF token of the client's session, read from a form as a browser would."""
    html = client.get(path).get_data(as_text=True)
    match = _CSRF.search(html)
    assert match, f"no CSRF token in the form at {path}"
    return match.group(1) or match.group(2)


def post_form(client, path: str, data: dict, **kwargs):
    """POSTs a form with the session's CSRF token, as the site's own forms do."""
    return client.post(path, data={**data, "csrf_token": csrf_token(client)}, **kwargs)


def log_in(client, email: str, password: str) -> None:
    response = post_form(client, "/login", {"email": email, "password": password})
    assert response.status_code == 302, response.get_data(as_text=True)[:500]


@pytest.fixture
def anonymous(app):
    return app.test_client()


def _client_for(app, role: str):
    client = app.test_client()
    log_in(client, *LOGINS[role])
    return client


@pytest.fixture
def buyer(app):
    """Rosa of Andes Coffee Roasters (org A)."""
    return _client_for(app, "buyer")


@pytest.fixture
def other_buyer(app):
    """Jorge of Lima Logistics (org B)."""
    return _client_for(app, "other_buyer")


@pytest.fixture
def operator(app):
    return _client_for(app, "operator")


@pytest.fixture
def auditor(app):
    return _client_for(app, "auditor")


@pytest.fixture
def api_token(identity):
    """A factory: ``api_token("buyer")`` is a bearer token for that demo login."""
    return lambda role: identity.issue_token(LOGINS[role][0], "tests")
