"""Hostile requests at every route: control characters in the address, the query string, the
headers and form fields; JSON nested a thousand deep or holding a number of thousands of
digits; numbers of thousands of digits in every numeric parameter. Each is answered with a 4xx
and a message (JSON ``{code, status, message}`` under /api, a page elsewhere), never a 5xx,
and nothing is recorded; on SQLite and on PostgreSQL, which refuses NUL in text."""

from __future__ import annotations

import json
import re

import pytest

from testbed.stores import seed_demo
from tests.web.conftest import LOGINS, ORG_A, csrf_token, log_in, served
from tests.web.hostile_forms import FORM_NAMES, forms, identity_position, position

CONTROL_CHARACTERS = ["\x00", "\x1b", "\x7f"]
HUGE_INTEGER = "9" * 5000  # past Python's int-string conversion limit (4,300 digits)
HUGE_NUMBERS = [HUGE_INTEGER, "-" + HUGE_INTEGER, "1e999999999", "9" * 4000 + ".5"]
# Every parameter some page or operation reads from the query string.
TEXT_PARAMETERS = ["q", "project", "topic", "originator", "state", "account", "buyer",
                   "status", "recipient", "farm", "farm_code", "currency", "next", "since",
                   "until", "at", "start", "end"]
NUMERIC_PARAMETERS = ["page", "page_size", "vintage", "max_price", "from_position",
                      "to_position", "first", "last", "after", "before", "limit", "position",
                      "amount"]
PAGE_MESSAGE = re.compile(r"<h1>4\d\d · |class=\"(?:flash )?error\"")
DEEP_ARRAY = "[" * 1000 + "]" * 1000  # 2 KB
DEEP_OBJECT = '{"a":' * 1000 + "1" + "}" * 1000  # 6 KB


def demo_ids(market) -> dict[str, str]:
    view = market.caught_up_view()
    orders, _ = view.orders(buyer_org=ORG_A, state=None, limit=1, offset=0)
    return {"listing_id": str(market.listings()[0].id), "registry_id": "VCS-1067",
            "retirement_id": view.retirements()[0]["retirement_id"],
            "order_id": orders[0]["order_id"], "fmt": "jsonl", "token_id": "none",
            "size": "1", "level": "0", "index": "000.p/1"}


def get_routes(app, market) -> list[tuple[str, str]]:
    """(role, path) for every GET route of the app, its ids taken from the demo."""
    ids, routes = demo_ids(market), []
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.endpoint in ("static", "api_docs_ui.asset"):
            continue
        path = rule.rule
        for name in rule.arguments:
            path = re.sub(rf"<(?:\w+:)?{name}>", ids[name], path)
        routes.append((role_for(path), path))
    return sorted(routes, key=lambda route: route[1])


def role_for(path: str) -> str:
    for prefix, role in (("/api/", "token"), ("/console", "operator"),
                         ("/auditor", "auditor"), ("/my/", "buyer")):
        if path.startswith(prefix):
            return role
    return "anonymous"


def clients_of(app, identity) -> dict:
    """A client for each kind of caller: signed in for the site, an operator's bearer token
    for the API (operators may read every operation but the buyers' own POSTs)."""
    made = {"anonymous": app.test_client()}
    for role in ("buyer", "operator", "auditor"):
        made[role] = app.test_client()
        log_in(made[role], *LOGINS[role])
    made["token"] = app.test_client()
    made["token"].environ_base["HTTP_AUTHORIZATION"] = \
        "Bearer " + identity.issue_token(LOGINS["operator"][0], "tests")
    return made


@pytest.fixture
def clients(app, identity):
    return clients_of(app, identity)


def fetch(client, path: str, **kwargs):
    """GET, the body read and the response closed (a static file's too)."""
    response = client.get(path, **kwargs)
    response.get_data()
    response.close()
    return response


def assert_refused_with_a_message(response, what: str) -> None:
    body = response.get_data(as_text=True)
    assert 400 <= response.status_code < 500, (what, response.status_code, body[:300])
    if response.is_json:  # the API, and the public audit files
        answer = response.get_json()
        assert set(answer) >= {"code", "status", "message"}, (what, answer)
    elif response.request.path.startswith("/api/"):
        raise AssertionError(f"{what}: the API answered {response.content_type}")
        assert answer["code"] == response.status_code and answer["message"], (what, answer)
    else:
        assert PAGE_MESSAGE.search(body), (what, body[:500])


def assert_answered(response, what: str) -> None:
    """Accepted or refused, but answered: no 5xx."""
    assert response.status_code < 500, (what, response.status_code,
                                        response.get_data(as_text=True)[:300])


# --- control characters in the address, the query string and the headers ---------------------

def answers_hostile_addresses(clients, routes) -> None:
    """A control character in the query string or the path of each route is refused with a
    message; an id of 5,000 digits is answered (a 404 or 400, never a 5xx)."""
    for role, path in routes:
        for character in CONTROL_CHARACTERS:
            query = "&".join(f"{name}=a{character}b" for name in TEXT_PARAMETERS)
            response = fetch(clients[role], f"{path}?{query}")
            assert_refused_with_a_message(response, f"{path}?...={character!r}")
            if path.count("/") > 1:  # an id or a page name in the path
                head, tail = path.rsplit("/", 1)
                response = fetch(clients[role], f"{head}/{tail[:3]}{character}{tail[3:]}")
                assert_refused_with_a_message(response, f"{head}/{tail[:3]}{character!r}...")
        if path.count("/") > 1:
            head = path.rsplit("/", 1)[0]
            assert_answered(fetch(clients[role], f"{head}/{HUGE_INTEGER}"), f"{head}/<digits>")


@pytest.mark.slow
def test_a_control_character_in_the_query_string_or_the_path_is_refused_on_every_route(
        app, market, clients):
    answers_hostile_addresses(clients, get_routes(app, market))


@pytest.fixture
def postgres_app(postgres_url, tmp_path, monkeypatch):
    """The app on a PostgreSQL store seeded with the demo."""
    seed_demo(postgres_url)
    yield from served(postgres_url, tmp_path, monkeypatch)


@pytest.mark.slow
@pytest.mark.postgres
def test_a_nul_anywhere_in_the_address_is_refused_on_postgresql_too(postgres_app):
    market = postgres_app.extensions["kapok_market"]
    identity = postgres_app.extensions["kapok_identity"]
    made = clients_of(postgres_app, identity)
    answers_hostile_addresses(made, get_routes(postgres_app, market))
    # The searches that reach the database's text columns, one by one.
    for role, path in [("anonymous", "/registry?q=a%00b"), ("anonymous", "/registry?project=a%00b"),
                       ("anonymous", "/catalogue?project=a%00b"),
                       ("token", "/api/v1/audit/events?topic=a%00b"),
                       ("token", "/api/v1/holdings?project=a%00b"),
                       ("operator", "/console/orders?q=a%00b")]:
        assert_refused_with_a_message(made[role].get(path), path)


@pytest.mark.parametrize("header", ["Accept-Language", "Idempotency-Key", "User-Agent",
                                    "X-Forwarded-For"])
@pytest.mark.parametrize("path", ["/", "/registry", "/api/v1/listings"])
def test_a_control_character_in_a_header_is_refused(anonymous, header, path):
    response = anonymous.get(path, headers={header: "a\x00b"})
    assert_refused_with_a_message(response, f"{header} on {path}")
    assert header in response.get_data(as_text=True)


def test_a_tab_in_a_header_and_other_scripts_in_a_query_are_accepted(anonymous):
    response = anonymous.get("/registry?q=Кофе 北京", headers={"Accept-Language": "es;\tq=1"})
    assert response.status_code == 200


# --- numbers of thousands of digits in every numeric parameter ------------------------------

@pytest.mark.slow
def test_a_huge_number_in_any_numeric_parameter_is_answered_without_failing(app, market,
                                                                            clients):
    for role, path in get_routes(app, market):
        for name in NUMERIC_PARAMETERS:
            for number in HUGE_NUMBERS:
                response = fetch(clients[role], path, query_string={name: number})
                assert_answered(response, f"{path}?{name}={number[:12]}...")
                if response.status_code >= 400:
                    assert_refused_with_a_message(response, f"{path}?{name}={number[:12]}")


@pytest.mark.parametrize("path, name", [
    ("/api/v1/listings", "page"), ("/api/v1/listings", "page_size"),
    ("/api/v1/listings", "vintage"), ("/api/v1/audit/events", "from_position"),
    ("/catalogue", "page"), ("/registry", "page"), ("/my/orders", "page"),
    ("/console/orders", "page"), ("/auditor/events", "limit")])
def test_a_5000_digit_page_or_number_is_a_4xx_with_a_message(clients, path, name):
    response = clients[role_for(path)].get(path, query_string={name: HUGE_INTEGER})
    assert_refused_with_a_message(response, f"{path}?{name}=<5000 digits>")


# --- JSON bodies ----------------------------------------------------------------------------

def json_posts(market) -> list[tuple[str, str, dict]]:
    """(role, path, a valid body) for every operation that reads a JSON body."""
    ids = demo_ids(market)
    return [
        ("anonymous", "/api/v1/quotes", {"listing_id": ids["listing_id"], "tonnes": 5}),
        ("buyer", "/api/v1/orders", {"listing_id": ids["listing_id"], "tonnes": 5}),
        ("buyer", "/api/v1/retirements", {"tonnes": 1, "beneficiary": "Acme",
                                          "reason": "Other"}),
    ]


def hostile_bodies(valid: dict) -> dict[str, tuple[str, str]]:
    """Bodies that break one bound each, by what they are: (body, a word of the message)."""
    numeric = next(name for name, value in valid.items() if isinstance(value, int))

    def with_number(number: str) -> str:
        return json.dumps({**valid, numeric: 0}).replace(f'"{numeric}": 0',
                                                         f'"{numeric}": {number}')

    def with_extra(value: str) -> str:
        return json.dumps(valid)[:-1] + f', "extra": {value}}}'

    def with_text(text: str) -> str:
        name = next(name for name, value in valid.items() if isinstance(value, str))
        return json.dumps({**valid, name: text})

    return {
        "arrays 1,000 deep": (DEEP_ARRAY, "levels deep"),
        "objects 1,000 deep": (DEEP_OBJECT, "levels deep"),
        "a field 1,000 deep": (with_extra(DEEP_ARRAY), "levels deep"),
        "a field 100 deep": (with_extra("[" * 100 + "]" * 100), "levels deep"),
        "a 5,000-digit integer": (with_number(HUGE_INTEGER), "digits"),
        "a negative 5,000-digit integer": (with_number("-" + HUGE_INTEGER), "digits"),
        "a 5,000-digit fraction": (with_number(HUGE_INTEGER + ".5"), "digits"),
        "a number beyond a float": (with_number("1e999"), "digits"),
        "NaN": (with_number("NaN"), "NaN"),
        "Infinity": (with_number("-Infinity"), "Infinity"),
        "a bare 5,000-digit integer": (HUGE_INTEGER, "digits"),
        "text with a NUL": (with_text("a\x00b"), "U+0000"),
        "text with a lone surrogate": (with_text("a\ud800b"), "U+D800"),
        "an idempotency key with a lone surrogate": (
            with_extra('"a\\ud800b"').replace('"extra"', '"idempotency_key"'), "U+D800"),
        "not UTF-8": ('{"a": "\xff"}'.encode("latin-1"), "not JSON"),
    }


@pytest.fixture
def api_clients(app, api_token):
    def client_for(role: str):
        client = app.test_client()
        if role != "anonymous":
            client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {api_token(role)}"
        return client
    return client_for


@pytest.mark.parametrize("operation", [0, 1, 2], ids=["quotes", "orders", "retirements"])
def test_deep_or_huge_json_is_a_400_with_a_message_and_nothing_recorded(app, market,
                                                                        api_clients, operation):
    role, path, valid = json_posts(market)[operation]
    client = api_clients(role)
    for what, (body, reason) in hostile_bodies(valid).items():
        before = position(app)
        response = client.post(path, data=body, content_type="application/json")
        assert_refused_with_a_message(response, f"{what} to {path}")
        assert response.status_code == 400, (what, response.get_json())
        assert reason in response.get_json()["message"], (what, response.get_json())
        assert position(app) == before, what
    # The same body, well formed, is accepted: the refusals were the hostile part's doing.
    assert client.post(path, json=valid).status_code in (200, 201), path


def test_a_huge_integer_inside_an_activity_is_a_400(market, api_clients):
    body = ('{"listing_id": "%s", "activities": [{"type": "electricity", "kwh": %s, '
            '"country": "PE"}]}' % (demo_ids(market)["listing_id"], HUGE_INTEGER))
    response = api_clients("anonymous").post("/api/v1/quotes", data=body,
                                             content_type="application/json")
    assert_refused_with_a_message(response, "activities kwh")


# --- form fields ------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("name", FORM_NAMES)
def test_a_control_character_or_a_huge_number_in_any_form_field_is_refused(app, market,
                                                                           request, name):
    role, path, baseline, bad = forms(market)[name]
    client = request.getfixturevalue(role)
    for field in {**baseline, **bad}:
        for value in [f"1{character}2" for character in CONTROL_CHARACTERS] + [HUGE_INTEGER]:
            data = {**baseline, field: value, "csrf_token": csrf_token(client)}
            if "key" in data and field != "key":
                data["key"] = f"fuzz:{value[:1]}{field}"
            before = position(app), identity_position(app)
            response = client.post(path, data=data)
            what = f"{name}: {field}={value[:12]!r}"
            assert_answered(response, what)
            if value != HUGE_INTEGER or response.status_code != 302:
                assert_refused_with_a_message(response, what)
                assert (position(app), identity_position(app)) == before, what
