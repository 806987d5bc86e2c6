"""Free text with control characters is refused before it is recorded: on PostgreSQL a NUL in
a beneficiary used to be stored, then stopped the read model for good (text columns cannot
hold NUL), taking every page that reads it down with it."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from ledger.domain.errors import InvalidCommandError
from ledger.domain.retirements import RetirementClaim
from market.application import Marketplace
from market.domain.errors import InvalidFarmError, InvalidPayoutError, MarketError
from market.domain.orders import UnknownOrderError
from market.domain.proceeds import FarmDetails
from testbed.builders import INVENTORY, claim, ledger_with_project, project_details
from identity.application import Identity
from identity.domain import IdentityError


def holding_five_tonnes(ledger) -> None:
    ledger_with_project(ledger)
    ledger.issue("VCS-1067", 2019, 100)
    ledger.transfer(INVENTORY, "acme", 5)


HOSTILE = ["A\x00B", "tab\there", "bell\x07", "line\nbreak", "\u202eevil.exe", "\ud800"]


@pytest.mark.parametrize("beneficiary", HOSTILE)
def test_a_beneficiary_with_a_control_character_is_refused_and_nothing_recorded(ledger,
                                                                               beneficiary):
    holding_five_tonnes(ledger)
    position = ledger.recorder.max_notification_id()
    with pytest.raises(InvalidCommandError, match="control character U\\+"):
        ledger.retire("acme", claim(beneficiary=beneficiary), 1)
    assert ledger.recorder.max_notification_id() == position
    assert ledger.caught_up_view().balances("acme")  # the read model still answers


def test_printable_unicode_and_markup_are_accepted_as_they_are(ledger):
    holding_five_tonnes(ledger)
    name = "Café Ñandú <b>東京</b> شركة 🌳"
    retired = ledger.retire("acme", RetirementClaim(
        beneficiary=name, reason="Other", details="line one\nline two\tend"), 1)
    assert ledger.get_retirement(retired["retirement_id"]).claim.beneficiary == name
    assert ledger.caught_up_view().retirements()[0]["beneficiary"] == name


def test_a_project_name_with_a_nul_is_refused(ledger):
    with pytest.raises(InvalidCommandError, match="name contains the control character"):
        ledger.register_project(project_details(name="Tambopata\x00"))
    assert ledger.recorder.max_notification_id() in (None, 0)


# --- the market's and the people's free text -----------------------------------------------

@pytest.fixture
def market(database_url):
    app = Marketplace(database=database_url)
    ledger_with_project(app.ledger)
    yield app
    app.close()


@pytest.mark.parametrize("name", HOSTILE[:1] + HOSTILE[2:])  # a tab, too, is not a name
def test_a_farmer_name_with_a_control_character_is_refused(market, name):
    position = market.recorder.max_notification_id()
    with pytest.raises(InvalidFarmError, match="control character U\\+"):
        market.register_farm("VCS-1067", "F-1", FarmDetails(name, Decimal(20), Decimal(3)))
    assert market.recorder.max_notification_id() == position


def test_a_payout_reference_with_a_control_character_is_refused(market):
    position = market.recorder.max_notification_id()
    with pytest.raises(InvalidPayoutError, match="control character U\\+0000"):
        market.record_payout("USD", "AIDER", None, 100, date(2026, 11, 1), "BCP\x00-9")
    assert market.recorder.max_notification_id() == position


def test_refund_and_cancellation_reasons_with_a_control_character_are_refused(market):
    # Refused before the order is read or the provider asked: the order need not exist.
    with pytest.raises(MarketError, match="control character U\\+0007"):
        market.refund_order("KAP-ORD-NONE", "bell\x07")
    with pytest.raises(MarketError, match="control character U\\+202E"):
        market.cancel_order("KAP-ORD-NONE", "\u202eevil")
    # A reason over several lines is still a reason: on to the order, which does not exist.
    with pytest.raises(UnknownOrderError, match="unknown order"):
        market.cancel_order("KAP-ORD-NONE", "line one\nline two")


@pytest.fixture
def identity(database_url):
    app = Identity(database_url)
    yield app
    app.close()


@pytest.mark.parametrize("organisation, name", [("Acme\x00", "Ana Quispe"),
                                                ("Acme S.A.C.", "Acme\x00")])
def test_sign_up_names_with_a_control_character_are_refused(identity, organisation, name):
    position = identity.recorder.max_notification_id()
    with pytest.raises(IdentityError, match="control character U\\+0000"):
        identity.sign_up(organisation, name, "ana@acme.example", "a long passphrase")
    assert identity.recorder.max_notification_id() == position


def test_a_token_label_with_a_control_character_is_refused(identity):
    identity.sign_up("Acme S.A.C.", "Ana Quispe", "ana@acme.example", "a long passphrase")
    position = identity.recorder.max_notification_id()
    with pytest.raises(IdentityError, match="control character U\\+0009"):
        identity.issue_token("ana@acme.example", "ci\tbot")
    assert identity.recorder.max_notification_id() == position
