"""The reliability tests' shared fixture: Kapok in this process, reaching PostgreSQL through a
proxy that can cut it away or make it hang."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from testbed.stores import seed_demo
from tests.conftest import view_worker
from tests.reliability.proxy import CuttableProxy
from tests.web.conftest import LOGINS
from web import create_app
from identity.application import Identity


@pytest.fixture
def proxied(postgres_url, monkeypatch, tmp_path):
    """The seeded demo on PostgreSQL, and an app that reaches it through a proxy."""
    seed_demo(postgres_url)
    token = Identity(postgres_url).issue_token(LOGINS["buyer"][0], "reliability tests")
    parts = urlsplit(postgres_url)
    proxy = CuttableProxy((parts.hostname, parts.port))
    monkeypatch.setenv("KAPOK_SIGNING_KEY_FILE", str(tmp_path / "key.pem"))
    app = create_app({"TESTING": True, "SECRET_KEY": "x", "DATABASE_URL":
                      f"postgresql://postgres@127.0.0.1:{proxy.port}{parts.path}"})
    with view_worker(app.extensions["kapok_market"]):
        yield app, proxy, token, postgres_url
    proxy.close()
    app.extensions["kapok_market"].close()
    app.extensions["kapok_identity"].close()
