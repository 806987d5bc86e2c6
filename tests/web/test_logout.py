"""Logging out ends the session for every process: a copied cookie opens nothing afterwards.
Two apps over one store stand for two gunicorn workers (or hosts)."""

from __future__ import annotations

import pytest

from tests.web.conftest import LOGINS, csrf_token, log_in, post_form
from web import create_app

BUYER_EMAIL, BUYER_PASSWORD = LOGINS["buyer"]


@pytest.fixture
def two_instances(store_url, tmp_path, monkeypatch):
    monkeypatch.setenv("KAPOK_SIGNING_KEY_FILE", str(tmp_path / "keys" / "signing-key.pem"))
    apps = [create_app({"TESTING": True, "DATABASE_URL": store_url, "SECRET_KEY": "shared"})
            for _ in range(2)]
    yield apps
    for app in apps:
        app.extensions["kapok_market"].close()
        app.extensions["kapok_identity"].close()


def session_cookie(client) -> str:
    return client.get_cookie("session").value


def browser_with(app, cookie: str):
    browser = app.test_client()
    browser.set_cookie("session", cookie)
    return browser


def tokens_of(app, email: str = BUYER_EMAIL) -> int:
    return len(app.extensions["kapok_identity"].tokens_of(email))


def test_a_cookie_copied_before_log_out_opens_nothing_on_another_instance(two_instances):
    first, second = two_instances
    browser = first.test_client()
    log_in(browser, BUYER_EMAIL, BUYER_PASSWORD)
    copied = session_cookie(browser)
    assert browser_with(second, copied).get("/my/portfolio").status_code == 200
    tokens_before = tokens_of(second)

    assert post_form(browser, "/logout", {}).status_code == 302

    replay = browser_with(second, copied)
    assert replay.get("/my/portfolio").status_code == 302  # to the log-in page
    minted = replay.post("/my/tokens", data={"label": "stolen",
                                             "csrf_token": csrf_token(replay, "/login")})
    assert minted.status_code == 302 and "/login" in minted.headers["Location"]
    assert tokens_of(second) == tokens_before


def test_log_out_ends_only_that_browsers_session(two_instances):
    first, second = two_instances
    laptop, phone = first.test_client(), second.test_client()
    log_in(laptop, BUYER_EMAIL, BUYER_PASSWORD)
    log_in(phone, BUYER_EMAIL, BUYER_PASSWORD)

    post_form(laptop, "/logout", {})

    assert phone.get("/my/portfolio").status_code == 200


def test_log_out_everywhere_ends_every_session_of_the_user_but_not_their_tokens(
        two_instances):
    first, second = two_instances
    laptop, phone, colleague = (first.test_client(), second.test_client(),
                                second.test_client())
    log_in(laptop, BUYER_EMAIL, BUYER_PASSWORD)
    log_in(phone, BUYER_EMAIL, BUYER_PASSWORD)
    log_in(colleague, *LOGINS["other_buyer"])
    token = first.extensions["kapok_identity"].issue_token(BUYER_EMAIL, "erp")

    response = post_form(laptop, "/logout", {"everywhere": "1"})

    assert response.status_code == 302
    assert "logged out everywhere" in laptop.get("/").get_data(as_text=True)
    for browser in (laptop, phone):
        assert browser.get("/my/portfolio").status_code == 302
    assert colleague.get("/my/portfolio").status_code == 200
    api = second.test_client().get("/api/v1/holdings",
                                   headers={"Authorization": f"Bearer {token}"})
    assert api.status_code == 200
    # Logging in again starts a session that holds.
    log_in(phone, BUYER_EMAIL, BUYER_PASSWORD)
    assert phone.get("/my/portfolio").status_code == 200


def test_a_password_change_ends_the_users_sessions(two_instances):
    first, second = two_instances
    browser = first.test_client()
    log_in(browser, BUYER_EMAIL, BUYER_PASSWORD)

    second.extensions["kapok_identity"].change_password(BUYER_EMAIL, "a new long passphrase")

    assert browser.get("/my/portfolio").status_code == 302
    log_in(browser, BUYER_EMAIL, "a new long passphrase")
    assert browser.get("/my/portfolio").status_code == 200


def test_a_session_cookie_of_another_user_is_refused(two_instances):
    # A session's id names its user: a cookie that claims another user's e-mail (signed with
    # a leaked key, say) with a real session id of someone else opens nothing.
    first, _ = two_instances
    browser = first.test_client()
    log_in(browser, BUYER_EMAIL, BUYER_PASSWORD)
    with browser.session_transaction() as session:
        session["_user_id"] = LOGINS["operator"][0]
    assert browser.get("/console/").status_code == 302


def test_log_out_everywhere_holds_when_the_user_changes_at_the_same_moment(
        two_instances, monkeypatch):
    first, second = two_instances
    browser = second.test_client()
    log_in(browser, BUYER_EMAIL, BUYER_PASSWORD)
    this_worker, other_worker = (app.extensions["kapok_identity"] for app in two_instances)
    read_user = this_worker._user

    def read_then_race(email):
        # The other worker logs the user out everywhere between this one's read and save.
        user = read_user(email)
        if user.session_generation == 0:
            other_worker.end_sessions_of(email)
        return user

    monkeypatch.setattr(this_worker, "_user", read_then_race)
    this_worker.end_sessions_of(BUYER_EMAIL)

    assert other_worker._user(BUYER_EMAIL).session_generation == 2
    assert browser.get("/my/portfolio").status_code == 302



def test_a_session_ended_in_one_worker_is_over_in_another_at_once(two_identity_workers):
    this_worker, other_worker = two_identity_workers
    this_worker.add_user("op@kapok.example", "Op", "operator", "a long passphrase")
    laptop, phone = (this_worker.start_session("op@kapok.example") for _ in range(2))
    assert other_worker.person_for_session(laptop, "op@kapok.example").name == "Op"
    assert other_worker.person_for_session(laptop, "someone@else.example") is None

    this_worker.end_session(laptop)
    assert other_worker.person_for_session(laptop, "op@kapok.example") is None
    assert other_worker.person_for_session(phone, "op@kapok.example").name == "Op"

    this_worker.end_sessions_of("op@kapok.example")
    assert other_worker.person_for_session(phone, "op@kapok.example") is None
    again = other_worker.start_session("op@kapok.example")
    assert this_worker.person_for_session(again, "op@kapok.example").name == "Op"
    assert this_worker.person_for_session("not-a-session", "op@kapok.example") is None
