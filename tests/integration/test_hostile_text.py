"""Free text with control characters is refused before it is recorded: on PostgreSQL a NUL in
a beneficiary used to be stored, then stopped the read model for good (text columns cannot
hold NUL), taking every page that reads it down with it."""

from __future__ import annotations

import pytest

from ledger.errors import InvalidCommandError
from ledger.retirements import RetirementClaim
from tests.builders import INVENTORY, claim, ledger_with_project, project_details

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
