"""The app's configuration comes from Kapok's settings, checked, and ``test_config`` wins."""

from __future__ import annotations

import pytest

from ledger.settings import SettingError
from web import create_app


def test_the_settings_configure_the_app_and_test_config_overrides_them(store_url, monkeypatch):
    monkeypatch.setenv("KAPOK_VIEW_WAIT_SECONDS", "7")
    monkeypatch.setenv("KAPOK_CARD_ATTEMPTS_PER_HOUR", "3")
    monkeypatch.setenv("KAPOK_PROXIES", "2")

    app = create_app({"TESTING": True, "DATABASE_URL": store_url, "PROXIES": 0})

    try:
        assert app.config["VIEW_WAIT_SECONDS"] == 7.0
        assert app.config["CARD_ATTEMPTS_PER_HOUR"] == 3
        assert app.config["PROXIES"] == 0
    finally:
        app.extensions["kapok_market"].close()
        app.extensions["kapok_identity"].close()


@pytest.mark.parametrize("name, value", [("KAPOK_CARD_ATTEMPTS_PER_HOUR", "ten"),
                                         ("KAPOK_ENV", "prod"),
                                         ("KAPOK_RESERVATION_MINUTES", "0")])
def test_a_setting_the_app_cannot_use_stops_it_naming_the_variable(store_url, monkeypatch,
                                                                   name, value):
    monkeypatch.setenv(name, value)

    with pytest.raises(SettingError, match=f"^{name} must be "):
        create_app({"TESTING": True, "DATABASE_URL": store_url})
