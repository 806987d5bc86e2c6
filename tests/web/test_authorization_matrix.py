"""Who may do what: every route of the app, for an anonymous visitor, a buyer of Andes Coffee
Roasters (org A), a buyer of Lima Logistics (org B), an operator and an auditor.

The table below is the access policy. A route added to the app without a row here fails
``test_the_policy_names_every_route_of_the_app``. Each row is requested by each role with a
real demo id in its path: org A's order, retirement or token, or org B's. Forms carry the
session's CSRF token and JSON bodies are ``{}``: the point is who may, not whether the body is
valid, so a role that may not act is refused before the body is read, and a role that may is
never refused (whatever its empty body then gets). A refusal shows no organisation's private
data, and a buyer's own pages show none of the other organisation's. (The log-in rate limit
and the session's rotation on log-in are tested in test_auth.py.)
"""

from __future__ import annotations

import re
from datetime import date
from urllib.parse import urlsplit

import pytest

from ledger.audit.keys import SigningKey, generate_key, signing_key_file
from ledger.audit.log import AuditLog
from ledger.domain.retirements import RetirementClaim
from market.domain.payments import SUCCEEDED, OfflinePaymentProvider, PaymentEvent
from tests.web.conftest import LOGINS, ORG_A, ORG_B, csrf_token, log_in
from identity.domain import holding_account

ROLES = ("anonymous", "buyer", "other_buyer", "operator", "auditor")  # columns of the table
ORG_OF = {"buyer": ORG_A, "other_buyer": ORG_B}

OK, FORBIDDEN, NOT_FOUND, UNAUTHORIZED, BAD_REQUEST = 200, 403, 404, 401, 400
LOGIN = "to the log-in page"  # a 302 to /login
ACTS = "acts"  # may act: any answer but 401, 403, the log-in page or a 5xx

# Who gets what, in the order of ROLES: anonymous, org A, org B, operator, auditor.
EVERYONE = (OK, OK, OK, OK, OK)
ANYONE_ACTS = (ACTS, ACTS, ACTS, ACTS, ACTS)
BUYERS = (LOGIN, OK, OK, FORBIDDEN, FORBIDDEN)
BUYERS_ACT = (LOGIN, ACTS, ACTS, FORBIDDEN, FORBIDDEN)
ORG_A_SEES = (LOGIN, OK, NOT_FOUND, FORBIDDEN, FORBIDDEN)
ORG_A_ACTS = (LOGIN, ACTS, NOT_FOUND, FORBIDDEN, FORBIDDEN)
ORG_B_SEES = (LOGIN, NOT_FOUND, OK, FORBIDDEN, FORBIDDEN)
ORG_B_ACTS = (LOGIN, NOT_FOUND, ACTS, FORBIDDEN, FORBIDDEN)
OPERATORS = (LOGIN, FORBIDDEN, FORBIDDEN, OK, FORBIDDEN)
OPERATORS_ACT = (LOGIN, FORBIDDEN, FORBIDDEN, ACTS, FORBIDDEN)
AUDITORS = (LOGIN, FORBIDDEN, FORBIDDEN, FORBIDDEN, OK)
AUDITORS_ACT = (LOGIN, FORBIDDEN, FORBIDDEN, FORBIDDEN, ACTS)
TOKEN_BUYERS_OPERATORS = (UNAUTHORIZED, OK, OK, OK, FORBIDDEN)
TOKEN_BUYERS_ACT = (UNAUTHORIZED, ACTS, ACTS, FORBIDDEN, FORBIDDEN)
TOKEN_ORG_A_OR_OPERATOR = (UNAUTHORIZED, OK, NOT_FOUND, OK, FORBIDDEN)
TOKEN_ORG_B_OR_OPERATOR = (UNAUTHORIZED, NOT_FOUND, OK, OK, FORBIDDEN)
TOKEN_ORG_A_ACTS = (UNAUTHORIZED, ACTS, NOT_FOUND, FORBIDDEN, FORBIDDEN)
TOKEN_ORG_B_ACTS = (UNAUTHORIZED, NOT_FOUND, ACTS, FORBIDDEN, FORBIDDEN)
TOKEN_AUDIT = (UNAUTHORIZED, FORBIDDEN, FORBIDDEN, OK, OK)
TOKEN_ANYONE = (UNAUTHORIZED, OK, OK, OK, OK)

# Rows: (method, rule, path values (names of demo ids, see ``demo_ids``), expected per role).
# A path value "query" is the query string.

# Public: the story, the catalogue, the retirement registry, logging in and the published
# audit files are for anyone, signed in or not. The payment webhook is public too; its
# signature is its credential, so an unsigned call is a 400 from anyone (see the tests below),
# and so are witnesses' cosignatures.
PUBLIC = [
    ("GET", "/", {}, EVERYONE),
    ("GET", "/healthz", {}, EVERYONE),
    ("GET", "/favicon.ico", {}, EVERYONE),
    ("GET", "/projects", {}, EVERYONE),
    ("GET", "/projects/<registry_id>", {"registry_id": "project"}, EVERYONE),
    ("GET", "/catalogue", {}, EVERYONE),
    ("GET", "/catalogue/<listing_id>/quote", {"listing_id": "listing"}, EVERYONE),
    ("POST", "/catalogue/<listing_id>/quote", {"listing_id": "listing"}, ANYONE_ACTS),
    ("GET", "/registry", {}, EVERYONE),
    ("GET", "/registry/<retirement_id>", {"retirement_id": "retirement_a"}, EVERYONE),
    ("GET", "/registry/<retirement_id>", {"retirement_id": "retirement_b"}, EVERYONE),
    ("GET", "/transparency", {}, EVERYONE),
    ("GET", "/login", {}, EVERYONE),
    ("POST", "/login", {}, ANYONE_ACTS),
    ("GET", "/signup", {}, EVERYONE),
    ("POST", "/signup", {}, ANYONE_ACTS),
    ("POST", "/logout", {}, ANYONE_ACTS),
    ("GET", "/audit/public-key.pem", {}, EVERYONE),
    ("GET", "/audit/tree-head", {}, EVERYONE),
    ("GET", "/audit/checkpoint", {}, EVERYONE),
    ("GET", "/audit/verifier-key", {}, EVERYONE),
    ("GET", "/audit/consistency", {"query": "old=0&new=0"}, EVERYONE),
    # No witness is trusted here: nothing is cosigned, the same for everyone.
    ("GET", "/audit/checkpoint.cosigned", {}, (NOT_FOUND,) * 5),
    ("GET", "/audit/proofs/<retirement_id>.json", {"retirement_id": "retirement_b"}, EVERYONE),
    ("GET", "/audit/checkpoints", {}, EVERYONE),
    ("GET", "/audit/checkpoints/<size>", {"size": "checkpoint_size"}, EVERYONE),
    ("GET", "/audit/inclusion", {"query": "index=0&size=1"}, EVERYONE),
    ("GET", "/audit/entries", {}, EVERYONE),
    ("GET", "/audit/tile/<level>/<path:index>", {"level": "tile_level", "index": "tile_index"},
     EVERYONE),
    ("GET", "/audit/verify_retirement.py", {}, EVERYONE),
    ("POST", "/webhooks/payments", {}, (BAD_REQUEST,) * 5),
    # A witness's cosigned checkpoint is its own credential: a form is no signed note.
    ("POST", "/audit/cosignatures", {}, (BAD_REQUEST,) * 5),
]

# Buyers only, and only their own organisation's things: another organisation's order,
# retirement or token is a 404, as if it did not exist. Operators and auditors have their
# own areas (403); anonymous visitors are sent to log in.
OWN_ORGANISATION = [
    ("GET", "/my/orders", {}, BUYERS),
    ("POST", "/my/orders", {}, BUYERS_ACT),
    ("GET", "/my/orders/<order_id>", {"order_id": "order_a"}, ORG_A_SEES),
    ("GET", "/my/orders/<order_id>", {"order_id": "order_b"}, ORG_B_SEES),
    ("GET", "/my/orders/<order_id>.json", {"order_id": "order_a"}, ORG_A_SEES),
    ("GET", "/my/orders/<order_id>.json", {"order_id": "order_b"}, ORG_B_SEES),
    ("POST", "/my/orders/<order_id>/pay", {"order_id": "order_a"}, ORG_A_ACTS),
    ("POST", "/my/orders/<order_id>/pay", {"order_id": "order_b"}, ORG_B_ACTS),
    ("POST", "/my/orders/<order_id>/card", {"order_id": "order_a"}, ORG_A_ACTS),
    ("POST", "/my/orders/<order_id>/card", {"order_id": "order_b"}, ORG_B_ACTS),
    ("POST", "/my/orders/<order_id>/cancel", {"order_id": "order_a"}, ORG_A_ACTS),
    ("POST", "/my/orders/<order_id>/cancel", {"order_id": "order_b"}, ORG_B_ACTS),
    ("GET", "/my/portfolio", {}, BUYERS),
    ("POST", "/my/portfolio/retire", {}, BUYERS_ACT),
    ("GET", "/my/retirements/<retirement_id>/certificate.pdf",
     {"retirement_id": "retirement_a"}, ORG_A_SEES),
    ("GET", "/my/retirements/<retirement_id>/certificate.pdf",
     {"retirement_id": "retirement_a_at_once"}, ORG_A_SEES),
    ("GET", "/my/retirements/<retirement_id>/certificate.pdf",
     {"retirement_id": "retirement_b"}, ORG_B_SEES),
    ("GET", "/my/tokens", {}, BUYERS),
    ("POST", "/my/tokens", {}, BUYERS_ACT),
    ("POST", "/my/tokens/<token_id>/revoke", {"token_id": "token_a"}, ORG_A_ACTS),
]

# Operators only: the console runs the registry and the market. Buyers and auditors are
# refused (auditors check the registry and must not change it).
OPERATOR_ONLY = [
    ("GET", "/console/", {}, OPERATORS),
    ("GET", "/console/projects", {}, OPERATORS),
    ("GET", "/console/projects/new", {}, OPERATORS),
    ("POST", "/console/projects/new", {}, OPERATORS_ACT),
    ("GET", "/console/projects/<registry_id>", {"registry_id": "project"}, OPERATORS),
    ("POST", "/console/projects/<registry_id>/vintages", {"registry_id": "project"},
     OPERATORS_ACT),
    ("POST", "/console/projects/<registry_id>/issuances", {"registry_id": "project"},
     OPERATORS_ACT),
    ("GET", "/console/farms", {}, OPERATORS),
    ("POST", "/console/farms", {}, OPERATORS_ACT),
    ("GET", "/console/listings", {}, OPERATORS),
    ("GET", "/console/listings/new", {}, OPERATORS),
    ("POST", "/console/listings/new", {}, OPERATORS_ACT),
    ("POST", "/console/listings/<listing_id>/status", {"listing_id": "listing"}, OPERATORS_ACT),
    ("POST", "/console/listings/<listing_id>/price", {"listing_id": "listing"}, OPERATORS_ACT),
    ("POST", "/console/listings/<listing_id>/offer", {"listing_id": "listing"}, OPERATORS_ACT),
    ("POST", "/console/listings/<listing_id>/reservation-cap", {"listing_id": "listing"},
     OPERATORS_ACT),
    ("GET", "/console/orders", {}, OPERATORS),
    ("GET", "/console/orders/<order_id>", {"order_id": "order_a"}, OPERATORS),
    ("GET", "/console/orders/<order_id>", {"order_id": "order_b"}, OPERATORS),
    ("POST", "/console/orders/<order_id>/cancel", {"order_id": "order_b"}, OPERATORS_ACT),
    ("POST", "/console/orders/<order_id>/refund", {"order_id": "order_b"}, OPERATORS_ACT),
    ("GET", "/console/orders/<order_id>/release", {"order_id": "order_b"}, OPERATORS),
    ("POST", "/console/orders/<order_id>/release", {"order_id": "order_b"}, OPERATORS_ACT),
    ("GET", "/console/reservations", {}, OPERATORS),
    ("POST", "/console/reservations/caps", {}, OPERATORS_ACT),
    ("GET", "/console/rules", {}, OPERATORS),
    ("POST", "/console/rules", {}, OPERATORS_ACT),
    ("GET", "/console/payouts", {}, OPERATORS),
    ("POST", "/console/payouts", {}, OPERATORS_ACT),
    ("GET", "/console/payouts/statement", {"query": "currency=USD"}, OPERATORS),
    ("GET", "/console/payouts/statement.csv", {"query": "currency=USD"}, OPERATORS),
    ("GET", "/console/balances", {}, OPERATORS),
    ("GET", "/console/users", {}, OPERATORS),
    ("POST", "/console/users", {}, OPERATORS_ACT),
    ("GET", "/console/registry", {}, OPERATORS),
    ("POST", "/console/registry/<retirement_id>/confirm", {"retirement_id": "retirement_a"},
     OPERATORS_ACT),
    ("POST", "/console/registry/<retirement_id>/fail", {"retirement_id": "retirement_a"},
     OPERATORS_ACT),
]

# Auditors only: the read-only audit area. Operators are kept out too: the people who check
# the registry are not the people who change it.
AUDITOR_ONLY = [
    ("GET", "/auditor/", {}, AUDITORS),
    ("GET", "/auditor/events", {}, AUDITORS),
    ("GET", "/auditor/balances", {}, AUDITORS),
    ("GET", "/auditor/verify", {}, AUDITORS),
    ("POST", "/auditor/verify", {}, AUDITORS_ACT),
    ("GET", "/auditor/export.<fmt>", {"fmt": "export_format"}, AUDITORS),
    ("GET", "/auditor/registry-checks", {}, AUDITORS),
]

# The API's public reads (and quotes, which change nothing): anyone, with or without a token.
API_PUBLIC = [
    ("GET", "/api/v1/openapi.json", {}, EVERYONE),
    ("GET", "/api/v1/docs", {}, EVERYONE),
    ("GET", "/api/v1/docs/assets/<name>", {"name": "docs_asset"}, EVERYONE),
    ("GET", "/api/v1/projects", {}, EVERYONE),
    ("GET", "/api/v1/projects/<registry_id>", {"registry_id": "project"}, EVERYONE),
    ("GET", "/api/v1/listings", {}, EVERYONE),
    ("GET", "/api/v1/listings/<listing_id>", {"listing_id": "listing"}, EVERYONE),
    ("POST", "/api/v1/quotes", {}, ANYONE_ACTS),
    ("GET", "/api/v1/retirements", {}, EVERYONE),
    ("GET", "/api/v1/retirements/<retirement_id>", {"retirement_id": "retirement_b"},
     EVERYONE),
]

# Token only: a bearer token of the right role, never a session cookie (the API takes no CSRF
# token, so a cookie must not act through it). Buyers see and act on their own organisation's
# orders, holdings and certificates only (another's is a 404); operators see every
# organisation's but buy and retire nothing; auditors and operators read the audit.
API_TOKEN_ONLY = [
    ("GET", "/api/v1/orders", {}, TOKEN_BUYERS_OPERATORS),
    ("POST", "/api/v1/orders", {}, TOKEN_BUYERS_ACT),
    ("GET", "/api/v1/orders/<order_id>", {"order_id": "order_a"}, TOKEN_ORG_A_OR_OPERATOR),
    ("GET", "/api/v1/orders/<order_id>", {"order_id": "order_b"}, TOKEN_ORG_B_OR_OPERATOR),
    ("GET", "/api/v1/orders/<order_id>/proceeds", {"order_id": "order_a"},
     TOKEN_ORG_A_OR_OPERATOR),
    ("GET", "/api/v1/orders/<order_id>/proceeds", {"order_id": "order_b"},
     TOKEN_ORG_B_OR_OPERATOR),
    ("POST", "/api/v1/orders/<order_id>/payment", {"order_id": "order_a"}, TOKEN_ORG_A_ACTS),
    ("POST", "/api/v1/orders/<order_id>/payment", {"order_id": "order_b"}, TOKEN_ORG_B_ACTS),
    ("POST", "/api/v1/orders/<order_id>/pay", {"order_id": "order_a"}, TOKEN_ORG_A_ACTS),
    ("POST", "/api/v1/orders/<order_id>/pay", {"order_id": "order_b"}, TOKEN_ORG_B_ACTS),
    ("GET", "/api/v1/holdings", {}, TOKEN_BUYERS_OPERATORS),
    ("GET", "/api/v1/holdings", {"query": "account=org-lima-logistics"},
     TOKEN_ORG_B_OR_OPERATOR),
    ("POST", "/api/v1/retirements", {}, TOKEN_BUYERS_ACT),
    ("GET", "/api/v1/retirements/<retirement_id>/certificate",
     {"retirement_id": "retirement_a"}, (UNAUTHORIZED, OK, NOT_FOUND, OK, OK)),
    ("GET", "/api/v1/retirements/<retirement_id>/certificate",
     {"retirement_id": "retirement_a_at_once"}, (UNAUTHORIZED, OK, NOT_FOUND, OK, OK)),
    ("GET", "/api/v1/retirements/<retirement_id>/certificate",
     {"retirement_id": "retirement_b"}, (UNAUTHORIZED, NOT_FOUND, OK, OK, OK)),
    ("GET", "/api/v1/audit/events", {}, TOKEN_AUDIT),
    ("GET", "/api/v1/audit/verify", {}, TOKEN_AUDIT),
]

# The signed head and a retirement's proof, public at /audit/: any token reads them as
# anyone reads them there, the other organisation's retirement too.
API_ANY_TOKEN = [
    ("GET", "/api/v1/audit/tree-head", {}, TOKEN_ANYONE),
    ("GET", "/api/v1/audit/retirements/<retirement_id>/proof", {"retirement_id": "retirement_b"},
     TOKEN_ANYONE),
]

# Rows whose pages may show any organisation's retirements (the public registry).
OPEN = PUBLIC + API_PUBLIC + API_ANY_TOKEN
MATRIX = (PUBLIC + OWN_ORGANISATION + OPERATOR_ONLY + AUDITOR_ONLY + API_PUBLIC + API_TOKEN_ONLY
          + API_ANY_TOKEN)

B_BENEFICIARY = "Transportes Verdes del Sur (matrix test)"
_PARAMETER = re.compile(r"<(?:\w+:)?(\w+)>")


def demo_ids(app, identity) -> dict[str, str]:
    """The demo's ids each row's path takes, plus a retirement and a spare API token made
    here: org B retires 10 t of its delivered order; org A gets a token to revoke. The log is
    then signed, so the audit routes have a head and proofs to show."""
    market = app.extensions["kapok_market"]
    market.ledger.retire(holding_account(ORG_B), RetirementClaim(
        beneficiary=B_BENEFICIARY, reason="Voluntary climate contribution",
        details="fleet 2025", period_start=date(2025, 1, 1), period_end=date(2025, 12, 31)),
        quantity=10)
    generate_key(signing_key_file())  # the app fixture points it into the test's folder
    AuditLog(market).follow(SigningKey.load(signing_key_file()))
    view = market.caught_up_view()
    order_a, order_b = (view.orders(buyer_org=org)[0][0] for org in (ORG_A, ORG_B))
    retirements = view.retirements()  # newest first
    retirement_b = next(row for row in retirements if row["beneficiary"] == B_BENEFICIARY)
    retirement_a = next(row for row in retirements if row["account"] == holding_account(ORG_A))
    at_once = next(row for row in retirements
                   if row["account"] not in (holding_account(ORG_A), holding_account(ORG_B))
                   and row["beneficiary"].startswith("Andes Coffee Roasters"))
    identity.issue_token(LOGINS["buyer"][0], "to be revoked")
    spare = next(token for token in identity.tokens_of(LOGINS["buyer"][0])
                 if token.label == "to be revoked")
    return {"project": "VCS-1067", "listing": str(market.listings()[0].id),
            "order_a": order_a["order_id"], "order_b": order_b["order_id"],
            "retirement_a": retirement_a["retirement_id"],
            "retirement_a_at_once": at_once["retirement_id"],
            "retirement_b": retirement_b["retirement_id"], "token_a": spare.token_id,
            "export_format": "jsonl", "docs_asset": "swagger-ui.css",
            "checkpoint_size": str(AuditLog(market).latest_head().tree_size),
            "tile_level": "0", "tile_index": "000.p/1"}


def private_marks(app, ids: dict) -> dict[str, set[str]]:
    """What no page but the public registry's and the staff's shows of an organisation to
    anyone else: its name, holding account, order and payment ids, its retirements' ids and
    (org B's) the beneficiary it named."""
    market = app.extensions["kapok_market"]
    orders = {ORG_A: market.get_order(ids["order_a"]), ORG_B: market.get_order(ids["order_b"])}
    names = {ORG_A: "Andes Coffee Roasters", ORG_B: "Lima Logistics"}
    marks = {org: {names[org], holding_account(org), order.order_id, order.payment_id}
             for org, order in orders.items()}
    marks[ORG_A] |= {ids["retirement_a"], ids["retirement_a_at_once"]}
    marks[ORG_B] |= {ids["retirement_b"], B_BENEFICIARY}
    return {org: {mark for mark in found if mark} for org, found in marks.items()}


def path_of(rule: str, values: dict, ids: dict) -> str:
    path = _PARAMETER.sub(lambda match: ids[values[match.group(1)]], rule)
    return f"{path}?{values['query']}" if "query" in values else path


def to_login(response) -> bool:
    return response.status_code == 302 and urlsplit(response.location).path == "/login"


def meets(expected, response) -> bool:
    if expected == LOGIN:
        return to_login(response)
    if expected == ACTS:
        return response.status_code < 500 and not to_login(response) \
            and response.status_code not in (UNAUTHORIZED, FORBIDDEN)
    return response.status_code == expected


def refused(response) -> bool:
    return response.status_code in (UNAUTHORIZED, FORBIDDEN, NOT_FOUND) or to_login(response)


def request_as(client, method: str, path: str, token: str | None = None, csrf: str = ""):
    """One request as the site's forms or an API client would send it."""
    if path.startswith("/api/"):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = client.open(path, method=method, headers=headers,
                               json={} if method == "POST" else None)
    elif path.startswith("/webhooks/"):
        response = client.post(path, data=b"{}", content_type="application/json")
    else:
        response = client.open(path, method=method,
                               data={"csrf_token": csrf} if method == "POST" else None)
    response.get_data()  # read it all, so that a file sent from disk (Swagger UI's
    response.close()  # assets) is closed here
    return response


# --- the tests -------------------------------------------------------------------------------


def test_the_policy_names_every_route_of_the_app(app):
    served = {(method, rule.rule) for rule in app.url_map.iter_rules()
              if rule.endpoint != "static" for method in rule.methods - {"HEAD", "OPTIONS"}}
    named = {(method, rule) for method, rule, _, _ in MATRIX}

    assert served - named == set(), "routes without a row in the access policy"
    assert named - served == set(), "rows for routes the app no longer has"


@pytest.mark.parametrize("role", ROLES)
def test_each_role_gets_what_the_policy_says_on_every_route(app, identity, api_token, role):
    ids = demo_ids(app, identity)
    marks = private_marks(app, ids)
    column = ROLES.index(role)
    browser = app.test_client()
    if role != "anonymous":
        log_in(browser, *LOGINS[role])
    machine = app.test_client()  # no cookie: the API rows carry the role's token, if any
    token = None if role == "anonymous" else api_token(role)
    csrf = csrf_token(browser)
    # What the role may not see: every organisation's private marks but its own.
    foreign = set().union(*(found for org, found in marks.items() if org != ORG_OF.get(role)))
    wrong = []

    logging_out_last = sorted(MATRIX, key=lambda row: row[1] == "/logout")  # it ends the session
    for row in logging_out_last:
        method, rule, values, expected_by_role = row
        expected, path = expected_by_role[column], path_of(rule, values, ids)
        client = machine if path.startswith("/api/") else browser
        response = request_as(client, method, path, token, csrf)
        binary = response.mimetype in ("application/pdf", "application/octet-stream")  # a tile
        body = "" if binary else response.get_data(as_text=True)
        if not meets(expected, response):
            wrong.append(f"{method} {path}: expected {expected}, got {response.status_code} "
                         f"{response.location or body[:160]!r}")
        # A refusal repeats at most what was asked (the id in the path), and a buyer sees
        # nothing of the other organisation's outside the public registry.
        if refused(response) or (role in ORG_OF and row not in OPEN):
            leaked = sorted(mark for mark in foreign if mark in body and mark not in path)
            if leaked:
                wrong.append(f"{method} {path}: shows {leaked}")
        # A session cookie opens no token-only operation, whatever the role.
        if expected_by_role[0] == UNAUTHORIZED and role != "anonymous":
            by_cookie = request_as(browser, method, path)
            if by_cookie.status_code != UNAUTHORIZED:
                wrong.append(f"{method} {path} with a session cookie: expected 401, got "
                             f"{by_cookie.status_code}")

    assert wrong == [], "\n".join(wrong)


def test_unsigned_or_badly_signed_payment_webhooks_change_nothing(app, market):
    listing = market.listings()[2]
    placed = market.place_order(str(listing.id), 12, ORG_B, holding_account(ORG_B))
    payment = market.start_payment(placed["order_id"])
    event = PaymentEvent("evt_matrix", SUCCEEDED, payment["payment_id"], placed["order_id"],
                         placed["total_minor"], "USD")
    body = market.payments.event_payload(event)
    before = market.recorder.max_notification_id()
    client = app.test_client()

    unsigned = client.post("/webhooks/payments", data=body, content_type="application/json")
    badly_signed = client.post(
        "/webhooks/payments", data=body, content_type="application/json",
        headers={"Stripe-Signature": OfflinePaymentProvider("not-the-secret").sign(body)})

    assert (unsigned.status_code, badly_signed.status_code) == (400, 400)
    assert market.recorder.max_notification_id() == before
    assert market.get_order(placed["order_id"]).state == "reserved"
