"""Limits on log-ins, sign-ups, API tokens and cards hold across processes: two apps over one
Redis stand for two gunicorn workers (or hosts), and one test runs two real workers."""

from __future__ import annotations

import http.cookiejar
import logging
import re
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from market.domain.payments import CardDeclinedError, Payment, PaymentProvider
from testbed.servers import Server, server_env
from tests.web.buyer_forms import place
from tests.web.conftest import LOGINS, csrf_token, log_in, post_form
from web import ConfigurationError, create_app
from web.ratelimit import count_log_in

BUYER_EMAIL = LOGINS["buyer"][0]


@pytest.fixture
def instances(store_url, tmp_path, monkeypatch, redis_limits):
    """``instances(n, **settings)``: n apps on the demo store, counting limits in one Redis."""
    monkeypatch.setenv("KAPOK_SIGNING_KEY_FILE", str(tmp_path / "keys" / "signing-key.pem"))
    made = []

    def make(count: int = 2, **settings):
        for _ in range(count):
            made.append(create_app({"TESTING": True, "DATABASE_URL": store_url,
                                    "SECRET_KEY": "limits", **redis_limits, **settings}))
        return made[-count:]

    yield make
    for app in made:
        app.extensions["kapok_market"].close()
        app.extensions["kapok_identity"].close()


def client_at(app, address: str = "127.0.0.1"):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def log_in_as(client, email: str, password: str = "not the password"):
    return post_form(client, "/login", {"email": email, "password": password})


def retry_after(response) -> int:
    return int(response.headers["Retry-After"])


def test_two_processes_count_an_e_mails_failed_log_ins_together(instances):
    first, second = instances(2, LOGIN_ATTEMPTS_PER_MINUTE=3)
    clients = [client_at(first), client_at(second)]

    codes = [log_in_as(clients[n % 2], BUYER_EMAIL).status_code for n in range(6)]

    assert codes == [401, 401, 401, 429, 429, 429]
    # Even the right password waits, wherever it is sent.
    assert log_in_as(clients[0], *LOGINS["buyer"]).status_code == 429


def test_only_failed_log_ins_count_against_an_e_mail(instances):
    app, = instances(1, LOGIN_ATTEMPTS_PER_MINUTE=2)
    for _ in range(4):
        signed_in = log_in_as(client_at(app), *LOGINS["buyer"])
        assert signed_in.status_code == 302
        assert "Retry-After" not in signed_in.headers  # only a refusal says when to retry
    assert log_in_as(client_at(app), BUYER_EMAIL).status_code == 401


def test_one_address_trying_many_e_mails_is_limited_before_any_password_is_checked(
        instances, monkeypatch):
    app, = instances(1, ADDRESS_ATTEMPTS_PER_MINUTE=5)
    identity, checked = app.extensions["kapok_identity"], []
    authenticate = identity.authenticate
    monkeypatch.setattr(identity, "authenticate",
                        lambda *args: checked.append(args[0]) or authenticate(*args))
    sprayer = client_at(app, "198.51.100.7")

    codes = [log_in_as(sprayer, f"guess{n}@x.example").status_code for n in range(8)]

    assert codes == [401] * 5 + [429] * 3
    assert len(checked) == 5  # no password hashed for a refused attempt
    # Another address is not held back by this one.
    assert log_in_as(client_at(app, "203.0.113.9"), *LOGINS["buyer"]).status_code == 302


@pytest.mark.slow
def test_a_spray_of_more_than_ten_thousand_keys_resets_no_ones_count(instances):
    app, = instances(1, LOGIN_ATTEMPTS_PER_MINUTE=3, ADDRESS_ATTEMPTS_PER_MINUTE=1000)
    victim = client_at(app)
    assert [log_in_as(victim, BUYER_EMAIL).status_code for _ in range(4)] == [
        401, 401, 401, 429]

    # 10,001 failed log-ins, each for another e-mail from another address, counted as the
    # log-in view counts them (the password check itself left out: it would take minutes).
    for n in range(10_001):
        with app.test_request_context("/login", method="POST", data={
                "email": f"spray{n}@x.example"}, environ_base={
                "REMOTE_ADDR": f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"}):
            count_log_in()
            app.process_response(app.response_class(status=401))

    assert log_in_as(victim, BUYER_EMAIL).status_code == 429
    assert log_in_as(client_at(app, "192.0.2.1"), *LOGINS["buyer"]).status_code == 429


def test_a_refused_log_in_shows_the_form_with_a_message_and_when_to_try_again(instances):
    app, = instances(1, LOGIN_ATTEMPTS_PER_MINUTE=1)
    client = client_at(app)
    log_in_as(client, BUYER_EMAIL)

    refused = log_in_as(client, BUYER_EMAIL)

    assert refused.status_code == 429 and refused.mimetype == "text/html"
    page = refused.get_data(as_text=True)
    assert "Too many log-in attempts. Wait a minute and try again." in page
    assert 'name="email"' in page
    assert 0 < retry_after(refused) <= 60


def test_sign_ups_and_api_tokens_from_one_address_are_limited(instances):
    app, = instances(1, ADDRESS_ATTEMPTS_PER_MINUTE=2)
    client = client_at(app)
    codes = [post_form(client, "/signup", {
        "organisation": f"Cusco Textiles {n}", "name": "Ana", "email": f"ana{n}@cusco.example",
        "password": "a long passphrase", "confirm": "a long passphrase"}).status_code
        for n in range(3)]
    assert codes == [302, 302, 429]

    log_in(client, *LOGINS["buyer"])
    made = [post_form(client, "/my/tokens", {"label": f"erp {n}"}) for n in range(3)]
    assert [response.status_code for response in made] == [200, 200, 429]
    assert "Too many attempts from your address" in made[2].get_data(as_text=True)
    assert 0 < retry_after(made[2]) <= 60
    assert len(app.extensions["kapok_identity"].tokens_of(BUYER_EMAIL)) == 2


class DecliningCards(PaymentProvider):
    """A stand-in for Stripe that declines every card and counts the charges it was sent."""

    name = "stripe"
    takes_card_details = True

    def __init__(self):
        self.payments: dict[str, Payment] = {}
        self.charges: list[str] = []

    def create_payment(self, order_id, amount_minor, currency, description):
        payment = Payment(f"pi_{order_id.lower()}", "requires_payment_method", amount_minor,
                          currency, client_secret=f"pi_{order_id.lower()}_secret_x")
        self.payments[payment.payment_id] = payment
        return payment

    def retrieve_payment(self, payment_id):
        return self.payments[payment_id]

    def start_card_setup(self, order_id, payment):
        return f"seti_{order_id.lower()}_secret_x"

    def confirm_payment(self, payment_id, payment_method):
        self.charges.append(payment_method)
        raise CardDeclinedError("the card was declined")

    def refund(self, payment_id, order_id, amount_minor=None):
        raise NotImplementedError

    def parse_webhook(self, payload, signature_header):
        raise NotImplementedError


def test_two_processes_count_an_organisations_card_attempts_together(instances):
    cards = DecliningCards()  # one provider, as Stripe is one for every process
    first, second = instances(2, PAYMENT_PROVIDER=cards, CARD_ATTEMPTS_PER_HOUR=2)
    buyers = [client_at(first), client_at(second)]
    for buyer in buyers:
        log_in(buyer, *LOGINS["buyer"])
    order_id = place(buyers[0], first.extensions["kapok_market"])
    post_form(buyers[0], f"/my/orders/{order_id}/pay", {})

    answers = [buyer.post(f"/my/orders/{order_id}/card", json={"payment_method": f"pm_{n}"},
                          headers={"X-CSRFToken": csrf_token(buyer, "/my/orders")})
               for n, buyer in enumerate(buyers * 3)]

    assert [answer.status_code for answer in answers] == [402, 402, 429, 429, 429, 429]
    assert len(cards.charges) == 2
    refused = answers[-1]
    assert refused.mimetype == "application/json"
    assert "too many card attempts" in refused.get_json()["message"]
    assert 0 < retry_after(refused) <= 3600


def test_production_refuses_to_start_without_a_shared_store_for_limits(store_url,
                                                                      monkeypatch):
    monkeypatch.setenv("KAPOK_ENV", "production")
    monkeypatch.delenv("KAPOK_RATELIMIT_STORAGE_URI", raising=False)
    with pytest.raises(ConfigurationError, match="KAPOK_RATELIMIT_STORAGE_URI"):
        create_app({"DATABASE_URL": store_url, "SECRET_KEY": "s" * 32})


def test_counting_in_memory_is_said_at_start(store_url, caplog):
    with caplog.at_level(logging.WARNING, logger="web.ratelimit"):
        app = create_app({"TESTING": True, "DATABASE_URL": store_url, "SECRET_KEY": "x",
                          "RATELIMIT_STORAGE_URI": "memory://"})
    app.extensions["kapok_market"].close()
    app.extensions["kapok_identity"].close()
    assert "each process and host counts apart" in caplog.text


def test_an_unreachable_store_falls_back_to_counting_in_memory_never_a_5xx(instances):
    app, = instances(1, RATELIMIT_STORAGE_URI="redis://127.0.0.1:9",
                     ADDRESS_ATTEMPTS_PER_MINUTE=2)
    client = client_at(app)
    codes = [log_in_as(client, f"guess{n}@x.example").status_code for n in range(4)]
    assert codes == [401, 401, 429, 429]


# --- two real gunicorn workers ----------------------------------------------------------------
@pytest.fixture
def gunicorn_two_workers(store_url, tmp_path, redis_limits):
    """``gunicorn -w 2`` serving Kapok, its access log naming the worker of each request."""
    log = tmp_path / "access.log"
    env = {**server_env(store_url), "KAPOK_SIGNING_KEY_FILE": str(tmp_path / "key.pem"),
           "KAPOK_RATELIMIT_STORAGE_URI": redis_limits["RATELIMIT_STORAGE_URI"],
           "KAPOK_RATELIMIT_KEY_PREFIX": redis_limits["RATELIMIT_KEY_PREFIX"],
           "KAPOK_ADDRESS_ATTEMPTS_PER_MINUTE": "4",
           "GUNICORN_CMD_ARGS": f"--access-logfile {log} --access-logformat '%(p)s %(r)s'"}
    server = Server("web:create_app()", env, str(tmp_path), "gunicorn", "/healthz")
    yield server.base, log
    server.stop()


@pytest.mark.slow
def test_two_gunicorn_workers_share_the_limit_per_address(gunicorn_two_workers):
    base, log = gunicorn_two_workers

    def failed_log_in(n: int) -> int:
        # A browser of its own each time: its session cookie and the form's CSRF token.
        browser = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        form = browser.open(f"{base}/login", timeout=30).read().decode()
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form).group(1)
        body = urllib.parse.urlencode({"email": f"guess{n}@x.example", "password": "guess!",
                                       "csrf_token": token}).encode()
        try:
            return browser.open(f"{base}/login", data=body, timeout=30).status
        except urllib.error.HTTPError as error:
            return error.code

    # Two at a time, so that both workers answer.
    with ThreadPoolExecutor(max_workers=2) as pool:
        codes = list(pool.map(failed_log_in, range(10)))

    assert sorted(codes) == [401] * 4 + [429] * 6
    posts = [line.split() for line in log.read_text().splitlines() if " POST /login " in line]
    assert len({pid for pid, *_ in posts}) == 2, "one worker answered every attempt"


@pytest.mark.parametrize("proxies, codes", [(0, [401, 401, 429]), (1, [401, 401, 401])])
def test_behind_a_proxy_each_forwarded_client_is_counted_apart(instances, proxies, codes):
    app, = instances(1, ADDRESS_ATTEMPTS_PER_MINUTE=2, PROXIES=proxies)
    proxy = client_at(app, "10.0.0.1")  # every request arrives from the proxy's address
    answers = [post_form(proxy, "/login", {"email": f"guess{n}@x.example", "password": "guess!"},
                         headers={"X-Forwarded-For": client})
               for n, client in enumerate(["198.51.100.1", "198.51.100.1", "198.51.100.2"])]
    assert [answer.status_code for answer in answers] == codes
