"""Signing up, logging in and out, sessions, CSRF, tokens and the security defaults."""

from __future__ import annotations

import pytest

from tests.web.conftest import LOGINS, csrf_token, log_in, post_form
from web import ConfigurationError, create_app


def test_a_company_signs_up_and_is_logged_in_as_its_first_buyer(anonymous, identity):
    response = post_form(anonymous, "/signup", {
        "organisation": "Cusco Textiles", "name": "Ana Torres", "email": "Ana@Cusco.example",
        "password": "a long passphrase", "confirm": "a long passphrase"})
    assert response.status_code == 302
    person = identity.find("ana@cusco.example")
    assert (person.role, person.organisation, person.account) == (
        "buyer", "cusco-textiles", "org-cusco-textiles")
    assert "Ana Torres" in anonymous.get("/").get_data(as_text=True)


@pytest.mark.parametrize("field, value, message", [
    ("password", "short", "at least"),
    ("email", "not-an-email", "Invalid email"),
    ("organisation", "", "This field is required"),
])
def test_sign_up_refuses_bad_input_with_a_message(anonymous, field, value, message):
    data = {"organisation": "Cusco Textiles", "name": "Ana", "email": "ana@cusco.example",
            "password": "a long passphrase", "confirm": "a long passphrase", field: value}
    if field == "password":
        data["confirm"] = value
    response = post_form(anonymous, "/signup", data)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)


def test_an_organisation_name_or_email_cannot_be_taken_twice(anonymous):
    data = {"organisation": "Andes Coffee Roasters", "name": "Eve", "email": "eve@x.example",
            "password": "a long passphrase", "confirm": "a long passphrase"}
    response = post_form(anonymous, "/signup", data)
    assert response.status_code == 409
    assert "already registered" in response.get_data(as_text=True)


def test_passwords_are_stored_as_argon2_hashes(identity):
    user = identity._user(LOGINS["buyer"][0])
    assert user.password_hash.startswith("$argon2id$")
    assert LOGINS["buyer"][1] not in user.password_hash


def test_wrong_password_is_refused_without_saying_which_part_was_wrong(anonymous):
    response = post_form(anonymous, "/login", {"email": LOGINS["buyer"][0],
                                               "password": "wrong password"})
    assert response.status_code == 401
    assert "Wrong e-mail or password" in response.get_data(as_text=True)
    unknown = post_form(anonymous, "/login", {"email": "nobody@x.example", "password": "x" * 12})
    assert unknown.status_code == 401


def test_a_form_without_its_csrf_token_is_refused(anonymous):
    response = anonymous.post("/login", data={"email": LOGINS["buyer"][0],
                                              "password": LOGINS["buyer"][1]})
    assert response.status_code == 400
    assert "CSRF" in response.get_data(as_text=True)


def test_the_session_is_replaced_on_log_in(anonymous):
    anonymous.get("/login")
    with anonymous.session_transaction() as session:
        session["planted"] = "by an attacker"
    log_in(anonymous, *LOGINS["buyer"])
    with anonymous.session_transaction() as session:
        assert "planted" not in session
        assert session["_user_id"] == LOGINS["buyer"][0]


def test_log_out_ends_the_session(buyer):
    assert buyer.get("/my/portfolio").status_code == 200
    response = post_form(buyer, "/logout", {})
    assert response.status_code == 302
    assert buyer.get("/my/portfolio").status_code == 302


def test_log_in_is_rate_limited(app):
    app.extensions["kapok_login_limiter"].attempts = 3
    client = app.test_client()
    token = csrf_token(client)
    codes = [client.post("/login", data={"email": "buyer@andes-coffee.example",
                                         "password": "guess number %d" % i,
                                         "csrf_token": token}).status_code for i in range(5)]
    assert codes == [401, 401, 401, 429, 429]
    # Even the right password waits out the window.
    right = client.post("/login", data={"email": LOGINS["buyer"][0],
                                        "password": LOGINS["buyer"][1], "csrf_token": token})
    assert right.status_code == 429


def test_next_only_redirects_within_the_site(anonymous):
    token = csrf_token(anonymous)
    response = anonymous.post("/login?next=https://evil.example/x", data={
        "email": LOGINS["buyer"][0], "password": LOGINS["buyer"][1], "csrf_token": token})
    assert response.headers["Location"] == "/"


def test_api_tokens_identify_their_user_and_can_be_revoked(identity):
    token = identity.issue_token(LOGINS["operator"][0], "ci")
    assert identity.person_for_token(token).role == "operator"
    identity.revoke_token(token)
    assert identity.person_for_token(token) is None
    assert identity.person_for_token("kapok_forged") is None


def test_security_headers_on_every_page(anonymous):
    response = anonymous.get("/")
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_production_refuses_to_start_without_a_secret_key(store_url, monkeypatch):
    monkeypatch.delenv("KAPOK_SECRET_KEY", raising=False)
    monkeypatch.setenv("KAPOK_ENV", "production")
    with pytest.raises(ConfigurationError, match="KAPOK_SECRET_KEY"):
        create_app({"DATABASE_URL": store_url})


def test_production_cookies_are_secure_httponly_and_samesite(store_url, monkeypatch):
    monkeypatch.setenv("KAPOK_ENV", "production")
    app = create_app({"DATABASE_URL": store_url, "SECRET_KEY": "s" * 32})
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"
    response = app.test_client().get("/")
    assert "max-age" in response.headers["Strict-Transport-Security"]
    app.extensions["kapok_market"].close()


def test_unknown_pages_are_html_and_unknown_api_paths_are_json(anonymous):
    page = anonymous.get("/no/such/page")
    assert page.status_code == 404 and page.mimetype == "text/html"
    api = anonymous.get("/api/v1/no-such-thing")
    assert api.status_code == 404
    assert api.get_json()["code"] == 404


@pytest.mark.parametrize("store", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_revocation_or_deactivation_in_another_worker_is_seen_at_once(store, request):
    # Identity remembers who a token or session stands for while its store does not move;
    # two instances over one store stand for two gunicorn workers.
    from web.identity import Identity

    url = request.getfixturevalue(f"{store}_url")
    this_worker, other_worker = Identity(url), Identity(url)
    try:
        this_worker.add_user("op@kapok.example", "Op", "operator", "a long passphrase")
        token = this_worker.issue_token("op@kapok.example", "ci")
        assert this_worker.person_for_token(token).role == "operator"
        assert this_worker.person_for_token(token).role == "operator"  # remembered
        other_worker.revoke_token(token)
        assert this_worker.person_for_token(token) is None
        assert this_worker.find("op@kapok.example").name == "Op"
        user = other_worker._user("op@kapok.example")
        user.deactivate()
        other_worker.save(user)
        assert this_worker.find("op@kapok.example") is None
    finally:
        this_worker.close()
        other_worker.close()
