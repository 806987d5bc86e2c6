"""Signing up, logging in and out, sessions, CSRF, tokens and the security defaults."""

from __future__ import annotations

import pytest

from tests.web.conftest import LOGINS, csrf_token, log_in, post_form
from web import ConfigurationError, create_app
from identity.application import Identity
from identity.domain import ApiToken, UnknownTokenError, User, token_id, token_index_id


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
    app.config["LOGIN_ATTEMPTS_PER_MINUTE"] = 3
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


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def identity_url(request):
    """An empty database for an identity store of its own: SQLite, then PostgreSQL."""
    return request.getfixturevalue(f"{request.param}_url")


@pytest.fixture
def bare_identity(identity_url):
    identity = Identity(identity_url)
    yield identity
    identity.close()


def test_each_user_lists_their_own_tokens_newest_first_and_revokes_only_those(bare_identity):
    identity = bare_identity
    for email in ("rosa@andes.example", "jorge@lima.example"):
        identity.add_user(email, email[:4], "operator", "a long passphrase")
    identity.issue_token("Rosa@Andes.example", "erp")
    identity.issue_token("jorge@lima.example", "theirs")
    identity.issue_token("rosa@andes.example", "ci")
    erp = identity.tokens_of("rosa@andes.example")[1]
    with pytest.raises(UnknownTokenError):
        identity.revoke_token_of("jorge@lima.example", erp.token_id)
    identity.revoke_token_of("rosa@andes.example", erp.token_id)

    listed = identity.tokens_of("ROSA@andes.example")
    assert [(t.label, t.revoked) for t in listed] == [("ci", False), ("erp", True)]
    assert listed[0].issued_at > listed[1].issued_at
    assert [t.label for t in identity.tokens_of("jorge@lima.example")] == ["theirs"]


def count_reads(identity, monkeypatch) -> tuple[list, list]:
    """The aggregates ``identity`` loads and the notification pages it selects, from now."""
    loaded, scanned = [], []
    get, select = identity.repository.get, identity.recorder.select_notifications
    monkeypatch.setattr(identity.repository, "get", lambda aggregate_id, *args, **kwargs:
                        loaded.append(aggregate_id) or get(aggregate_id, *args, **kwargs))
    monkeypatch.setattr(identity.recorder, "select_notifications", lambda *args, **kwargs:
                        scanned.append(args) or select(*args, **kwargs))
    return loaded, scanned


def test_listing_a_users_tokens_reads_their_index_and_tokens_only(bare_identity, monkeypatch):
    identity = bare_identity
    for email in ("rosa@andes.example", "jorge@lima.example"):
        identity.add_user(email, email[:4], "operator", "a long passphrase")
    for n in range(3):
        identity.issue_token("jorge@lima.example", f"theirs {n}")
    own = [identity.issue_token("rosa@andes.example", label) for label in ("erp", "ci")]
    loaded, scanned = count_reads(identity, monkeypatch)

    assert [t.label for t in identity.tokens_of("rosa@andes.example")] == ["ci", "erp"]

    assert scanned == []
    assert loaded == [token_index_id("rosa@andes.example"), *map(token_id, reversed(own))]


def test_a_user_registered_before_token_indexes_has_their_tokens_found_and_then_indexed(
        bare_identity, monkeypatch):
    identity = bare_identity
    # As a store made before indexes were kept holds them: a user and a token, no index.
    identity.save(User("old@andes.example", "Old", "operator", None, "no-password"))
    identity.save(ApiToken(token_id("kapok_issued-long-ago"), "old@andes.example", "old"))
    assert [t.label for t in identity.tokens_of("old@andes.example")] == ["old"]
    # The next token opens the user's index with the earlier ones: no scan after that.
    identity.issue_token("old@andes.example", "new")
    _, scanned = count_reads(identity, monkeypatch)
    assert [t.label for t in identity.tokens_of("old@andes.example")] == ["new", "old"]
    assert scanned == []


def test_tokens_issued_to_one_user_by_two_workers_at_once_are_both_listed(
        bare_identity, identity_url, monkeypatch):
    this_worker, other_worker = bare_identity, Identity(identity_url)
    try:
        this_worker.add_user("rosa@andes.example", "Rosa", "operator", "a long passphrase")
        # The other worker issues one between this worker's read of the index and its save.
        read_index = this_worker._token_index

        def read_then_race(email):
            index = read_index(email)
            if not other_worker.tokens_of(email):
                other_worker.issue_token(email, "other worker's")
            return index

        monkeypatch.setattr(this_worker, "_token_index", read_then_race)
        this_worker.issue_token("rosa@andes.example", "this worker's")
        assert [t.label for t in this_worker.tokens_of("rosa@andes.example")] == [
            "this worker's", "other worker's"]
    finally:
        other_worker.close()


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
    monkeypatch.setenv("KAPOK_STRIPE_SECRET_KEY", "sk_test_x")  # production takes real payments
    monkeypatch.setenv("KAPOK_STRIPE_WEBHOOK_SECRET", "whsec_x")
    app = create_app({"DATABASE_URL": store_url, "SECRET_KEY": "s" * 32,
                      "RATELIMIT_STORAGE_URI": "memory://"})
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


def test_a_revocation_or_deactivation_in_another_worker_is_seen_at_once(two_identity_workers):
    # Identity remembers who a token or session stands for while its store does not move.
    this_worker, other_worker = two_identity_workers
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


def test_an_api_call_with_a_token_sets_no_session_cookie(anonymous, api_token):
    response = anonymous.get("/api/v1/orders",
                             headers={"Authorization": f"Bearer {api_token('buyer')}"})
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers


def test_a_session_cookie_sent_from_another_browser_is_no_longer_fresh(buyer):
    # Flask-Login's basic session protection still runs wherever there is a session.
    with buyer.session_transaction() as session:
        assert session["_fresh"] is True
    assert buyer.get("/my/orders", headers={"User-Agent": "another browser"}).status_code == 200
    with buyer.session_transaction() as session:
        assert session["_fresh"] is False
