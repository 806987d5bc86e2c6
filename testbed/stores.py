"""Stores seeded for benchmarks and tests: the demo, and buyers with API tokens."""

from __future__ import annotations

from identity.application import Identity
from ledger.demo import demo_steps
from market.application import Marketplace
from market.demo import market_demo_steps
from web.demo import seed_people

BUYER_PASSWORD = "a long passphrase"


def seed_demo(database_url: str) -> None:
    """The demo, as ``kapok demo`` seeds it: ledger, market, read model and logins."""
    market = Marketplace(database=database_url)
    for _label, step in demo_steps(market.ledger) + market_demo_steps(market):
        step()
    market.caught_up_view()
    market.close()
    identity = Identity(database_url)
    seed_people(identity)
    identity.close()


def sign_up_buyers(database_url: str, count: int, token_name: str) -> list[str]:
    """``count`` organisations of one buyer each (``buyer<n>@company<n>.example``); returns
    a bearer token named ``token_name`` for each buyer, in order."""
    identity = Identity(database_url)
    tokens = []
    for n in range(count):
        email = f"buyer{n}@company{n}.example"
        identity.sign_up(f"Company {n}", f"Buyer {n}", email, BUYER_PASSWORD)
        tokens.append(identity.issue_token(email, token_name))
    identity.close()
    return tokens
