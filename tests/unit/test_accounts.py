"""Rules of the ledger's aggregates on their own, without a database: accounts, projects,
retirement claims and idempotency records."""

from __future__ import annotations

import functools
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from ledger.domain.accounts import BUFFER, ESCROW, HOLDING, INVENTORY, Account, account_id
from ledger.domain.commands import CommandRecord, check_key, fingerprint
from ledger.domain.errors import (
    AccountKindError,
    IdempotencyConflictError,
    InvalidCommandError,
    InvalidSerialError,
    SerialsNotHeldError,
    UnknownVintageError,
)
from ledger.domain.projects import Project, ProjectDetails, Vintage
from ledger.domain.retirements import MAX_TEXT, RetirementClaim
from ledger.domain.serials import SerialBlock, SerialRange
from testbed.builders import claim, project_details

TODAY = date(2024, 6, 1)


def block(first: int, last: int, batch: int = 1, vintage: int = 2021) -> SerialBlock:
    return SerialBlock(vintage, batch, first, last, "VCS-1067", "PE")


def account(kind: str = HOLDING, *issued: SerialBlock, name: str = "acme") -> Account:
    opened = Account(name, kind, name.title())
    if issued:
        opened.record_issued(issued, issuance_batch=issued[0].batch)
    return opened


def replayed(aggregate):
    """A fresh aggregate rebuilt from the events the given one collected."""
    return functools.reduce(lambda state, event: event.mutate(state), aggregate.collect_events(),
                            None)


def spans(blocks) -> list[tuple[int, int]]:
    return [(b.first, b.last) for b in blocks]


# --- Account -------------------------------------------------------------------------------


def test_an_opened_account_holds_nothing_and_is_named_by_its_id():
    opened = Account("acme", HOLDING, "ACME S.A.C.")

    assert (opened.name, opened.kind, opened.owner) == ("acme", HOLDING, "ACME S.A.C.")
    assert opened.id == account_id("acme")
    assert opened.blocks == []
    assert opened.balance == 0


@pytest.mark.parametrize("kind, status", [(INVENTORY, "held"), (HOLDING, "held"),
                                          (BUFFER, "buffer"), (ESCROW, "reserved")])
def test_an_account_kind_gives_the_status_of_its_tonnes(kind, status):
    assert account(kind).status == status


def test_issued_blocks_are_held_in_serial_order():
    inventory = account(INVENTORY)

    inventory.record_issued([block(101, 200, batch=2, vintage=2022)], issuance_batch=2)
    inventory.record_issued([block(1, 100, batch=1, vintage=2020)], issuance_batch=1)

    assert inventory.blocks == [block(1, 100, batch=1, vintage=2020),
                                block(101, 200, batch=2, vintage=2022)]
    assert inventory.balance == 200


def test_cannot_issue_serials_an_account_already_holds():
    inventory = account(INVENTORY, block(1, 100))

    with pytest.raises(InvalidSerialError):
        inventory.record_issued([block(100, 150)], issuance_batch=1)

    assert inventory.blocks == [block(1, 100)]


def test_sending_removes_the_blocks_and_lowers_the_balance():
    inventory = account(INVENTORY, block(1, 100))

    inventory.send([block(41, 60)], to_account="globex", transfer_id="T-1")

    assert spans(inventory.blocks) == [(1, 40), (61, 100)]
    assert inventory.balance == 80


def test_receiving_adds_the_blocks_and_raises_the_balance():
    holding = account(HOLDING, block(1, 10))

    holding.receive([block(101, 110, batch=2)], from_account="ecosphere", transfer_id="T-1")

    assert holding.blocks == [block(1, 10), block(101, 110, batch=2)]
    assert holding.balance == 20


@pytest.mark.parametrize(
    "held, received",
    [
        ([block(1, 10), block(21, 30)], [block(11, 20)]),  # fills the gap
        ([block(11, 30)], [block(1, 10)]),  # just below
        ([block(1, 10)], [block(11, 20), block(21, 30)]),  # just above, in two pieces
    ],
)
def test_receiving_neighbouring_serials_of_a_batch_merges_them(held, received):
    holding = account(HOLDING, *held)

    holding.receive(received, from_account="ecosphere", transfer_id="T-1")

    assert holding.blocks == [block(1, 30)]


def test_neighbouring_serials_of_different_batches_stay_separate_blocks():
    holding = account(HOLDING, block(1, 10, batch=1))

    holding.receive([block(11, 20, batch=2)], from_account="ecosphere", transfer_id="T-1")

    assert len(holding.blocks) == 2


def test_cannot_receive_serials_already_held():
    holding = account(HOLDING, block(1, 10))

    with pytest.raises(InvalidSerialError):
        holding.receive([block(5, 15)], from_account="ecosphere", transfer_id="T-1")

    assert holding.blocks == [block(1, 10)]


@pytest.mark.parametrize(
    "operation",
    [
        lambda a, blocks: a.retire(blocks, retirement_id="R-1"),
        lambda a, blocks: a.cancel(blocks, cancellation_id="C-1"),
    ],
    ids=["retire", "cancel"],
)
def test_retiring_or_cancelling_takes_the_serials_out_of_the_account(operation):
    holding = account(HOLDING, block(1, 100))

    operation(holding, [block(1, 30)])

    assert holding.blocks == [block(31, 100)]
    assert holding.balance == 70


@pytest.mark.parametrize(
    "operation",
    [
        lambda a, blocks: a.send(blocks, to_account="globex", transfer_id="T-1"),
        lambda a, blocks: a.retire(blocks, retirement_id="R-1"),
        lambda a, blocks: a.cancel(blocks, cancellation_id="C-1"),
    ],
    ids=["send", "retire", "cancel"],
)
def test_cannot_move_serials_the_account_does_not_hold_and_nothing_changes(operation):
    holding = account(HOLDING, block(1, 100))
    version = holding.version
    holding.collect_events()

    with pytest.raises(SerialsNotHeldError) as raised:
        operation(holding, [block(90, 110)])

    assert raised.value.missing == 101
    assert holding.blocks == [block(1, 100)]
    assert holding.version == version
    assert holding.collect_events() == []


@pytest.mark.parametrize(
    "operation",
    [
        lambda a, blocks: a.send(blocks, to_account="acme", transfer_id="T-1"),
        lambda a, blocks: a.retire(blocks, retirement_id="R-1"),
    ],
    ids=["send", "retire"],
)
def test_the_buffer_pool_cannot_send_or_retire(operation):
    pool = account(BUFFER, block(1, 100), name="buffer-pool")

    with pytest.raises(AccountKindError, match="buffer-pool"):
        operation(pool, [block(1, 10)])

    assert pool.balance == 100


def test_the_buffer_pool_can_cancel_for_a_reversal_and_receive():
    pool = account(BUFFER, block(1, 100), name="buffer-pool")

    pool.cancel([block(1, 10)], cancellation_id="C-1")
    pool.receive([block(201, 210, batch=2)], from_account="ecosphere", transfer_id="T-1")

    assert spans(pool.blocks) == [(11, 100), (201, 210)]


@pytest.mark.parametrize("kind", [INVENTORY, HOLDING, ESCROW])
def test_accounts_other_than_the_buffer_pool_can_send_and_retire(kind):
    sender = account(kind, block(1, 100))

    sender.send([block(1, 10)], to_account="globex", transfer_id="T-1")
    sender.retire([block(11, 20)], retirement_id="R-1")

    assert sender.blocks == [block(21, 100)]


def test_picking_a_quantity_takes_the_oldest_vintage_first():
    holding = account(HOLDING, block(101, 200, batch=2, vintage=2022))
    holding.receive([block(1, 100, batch=1, vintage=2019)], from_account="x", transfer_id="T-1")

    assert holding.pick(120, None) == [block(1, 100, batch=1, vintage=2019),
                                       block(101, 120, batch=2, vintage=2022)]


def test_picking_serials_takes_exactly_those_serials_and_changes_nothing():
    holding = account(HOLDING, block(1, 100))

    assert holding.pick(None, SerialRange(41, 50)) == [block(41, 50)]
    assert holding.balance == 100


def test_the_collected_events_replay_to_the_same_account():
    inventory = account(INVENTORY, block(1, 1_000))
    inventory.record_issued([block(1_001, 2_000, batch=2, vintage=2022)], issuance_batch=2)
    inventory.send([block(1, 100)], to_account="acme", transfer_id="T-1")
    inventory.send(inventory.pick(None, SerialRange(500, 1_500)), to_account="acme",
                   transfer_id="T-2")
    inventory.receive([block(1, 50)], from_account="acme", transfer_id="T-3")
    inventory.retire([block(1, 10)], retirement_id="R-1")
    inventory.cancel([block(1_900, 2_000, batch=2, vintage=2022)], cancellation_id="C-1")

    rebuilt = replayed(inventory)

    assert rebuilt.blocks == inventory.blocks
    assert spans(rebuilt.blocks) == [(11, 50), (101, 499), (1_501, 1_899)]
    assert (rebuilt.id, rebuilt.version, rebuilt.balance) == (
        inventory.id, inventory.version, inventory.balance)


@given(moves=st.lists(st.tuples(st.booleans(), st.integers(1, 120)), max_size=12))
def test_tonnes_moved_between_two_accounts_are_conserved_and_replay(moves):
    inventory = account(INVENTORY, block(1, 300), block(301, 400, batch=2, vintage=2019),
                        name="ecosphere")
    holding = account(HOLDING, name="acme")
    for backwards, quantity in moves:
        sender, receiver = (holding, inventory) if backwards else (inventory, holding)
        quantity = min(quantity, sender.balance)
        blocks = sender.pick(quantity, None)
        sender.send(blocks, to_account=receiver.name, transfer_id="T")
        receiver.receive(blocks, from_account=sender.name, transfer_id="T")

    assert inventory.balance + holding.balance == 400
    assert replayed(inventory).blocks == inventory.blocks
    assert replayed(holding).blocks == holding.blocks


# --- Project -------------------------------------------------------------------------------


def project() -> Project:
    return Project(project_details("VCS-1067"))


@pytest.mark.parametrize("year", [1990, 2005, TODAY.year])
def test_a_vintage_from_1990_to_this_year_can_be_added(year):
    registered = project()

    registered.add_vintage(Vintage(year, ("CCB",)), today=TODAY)

    assert registered.vintage(year) == Vintage(year, ("CCB",))


@pytest.mark.parametrize("year", [1989, 0, -2021, TODAY.year + 1, 9999])
def test_cannot_add_a_vintage_before_1990_or_after_this_year(year):
    registered = project()

    with pytest.raises(InvalidCommandError, match=str(year)):
        registered.add_vintage(Vintage(year), today=TODAY)

    assert registered.vintages == {}


def test_adding_a_vintage_twice_changes_nothing():
    registered = project()
    registered.add_vintage(Vintage(2021, ("CCB",)), today=TODAY)
    registered.collect_events()

    registered.add_vintage(Vintage(2021, ("CCP",)), today=TODAY)

    assert registered.collect_events() == []
    assert registered.vintage(2021).labels == ("CCB",)


def test_an_unknown_vintage_is_an_error_naming_the_project_and_year():
    registered = project()
    registered.add_vintage(Vintage(2020), today=TODAY)

    with pytest.raises(UnknownVintageError, match=r"VCS-1067 has no vintage 2021; known: 2020"):
        registered.vintage(2021)


def test_a_project_replays_with_its_vintages():
    registered = project()
    registered.add_vintage(Vintage(2020), today=TODAY)
    registered.add_vintage(Vintage(2021, ("CCB",)), today=TODAY)

    rebuilt = replayed(registered)

    assert rebuilt.details == registered.details
    assert rebuilt.vintages == registered.vintages


def test_acceptable_project_details_pass_the_check():
    project_details(buffer_percent="0").check()
    project_details(buffer_percent="99.99", sdgs=(1, 17), country="BR").check()


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param(dict(registry_id=""), id="empty registry id"),
        pytest.param(dict(registry_id="VCS 1067"), id="space in registry id"),
        pytest.param(dict(registry_id="VCS-١٠٦٧"), id="non-ASCII digits in registry id"),
        pytest.param(dict(name="  "), id="blank name"),
        pytest.param(dict(country=""), id="no country"),
        pytest.param(dict(country="pe"), id="lower-case country"),
        pytest.param(dict(country="PER"), id="alpha-3 country"),
        pytest.param(dict(country="P"), id="one-letter country"),
        pytest.param(dict(country="P3"), id="digit in country"),
        pytest.param(dict(country="ÉS"), id="non-ASCII country"),
        pytest.param(dict(project_type="REDD"), id="unknown type"),
        pytest.param(dict(project_type="redd+"), id="lower-case type"),
        pytest.param(dict(area_ha=Decimal("0")), id="zero area"),
        pytest.param(dict(area_ha=Decimal("-1")), id="negative area"),
        pytest.param(dict(area_ha=Decimal("NaN")), id="NaN area"),
        pytest.param(dict(area_ha=Decimal("Infinity")), id="infinite area"),
        pytest.param(dict(buffer_percent=Decimal("-0.01")), id="negative buffer"),
        pytest.param(dict(buffer_percent=Decimal("100")), id="whole buffer"),
        pytest.param(dict(buffer_percent=Decimal("NaN")), id="NaN buffer"),
        pytest.param(dict(sdgs=(0,)), id="SDG 0"),
        pytest.param(dict(sdgs=(13, 18)), id="SDG 18"),
    ],
)
def test_cannot_register_a_project_with_unacceptable_details(changes):
    with pytest.raises(InvalidCommandError):
        project_details(**changes).check()


def is_acceptable(details: ProjectDetails) -> bool:
    try:
        details.check()
    except InvalidCommandError:
        return False
    return True


# Half plain ASCII, half any letters and digits: whatever ``check`` accepts must print well.
REGISTRY_IDS = st.from_regex(r"[A-Za-z0-9]{1,6}(-[A-Za-z0-9]{1,6})?", fullmatch=True) | st.text(
    st.characters(categories=("L", "N")) | st.just("-"), min_size=1, max_size=8)
COUNTRIES = st.from_regex(r"[A-Z]{2}", fullmatch=True) | st.text(
    st.characters(categories=("Lu",)), min_size=2, max_size=2)


@given(registry_id=REGISTRY_IDS, country=COUNTRIES)
def test_every_serial_printed_for_an_acceptable_project_parses_back(registry_id, country):
    details = project_details(registry_id, country=country)
    assume(is_acceptable(details))
    issued = SerialBlock(2021, 12, 1_000_001, 1_008_500, details.registry_id, details.country)

    assert SerialRange.parse(issued.serial) == SerialRange(1_000_001, 1_008_500)


# --- RetirementClaim -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        dict(),
        dict(beneficiary="b" * MAX_TEXT, reason="r" * MAX_TEXT, details="d" * MAX_TEXT),
        dict(period_start=date(2023, 1, 1), period_end=date(2023, 1, 1)),
        dict(period_start=date(2023, 1, 1)),
        dict(claim_type="contribution", use="compliance"),
    ],
)
def test_acceptable_retirement_claims_pass_the_check(changes):
    RetirementClaim(**{"beneficiary": "ACME S.A.C.", "reason": "Environmental Benefit",
                       **changes}).check()


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(beneficiary=""), "beneficiary"),
        (dict(beneficiary=" \t"), "beneficiary"),
        (dict(reason=""), "reason"),
        (dict(reason="   "), "reason"),
        (dict(beneficiary="b" * (MAX_TEXT + 1)), "beneficiary is longer"),
        (dict(reason="r" * (MAX_TEXT + 1)), "reason is longer"),
        (dict(details="d" * (MAX_TEXT + 1)), "details is longer"),
        (dict(period_start=date(2023, 1, 2), period_end=date(2023, 1, 1)), "ends before"),
        (dict(claim_type="removal"), "claim type"),
        (dict(claim_type="Offset"), "claim type"),
        (dict(use="mandatory"), "use must be"),
    ],
)
def test_cannot_retire_with_an_unacceptable_claim(changes, message):
    values = {"beneficiary": "ACME S.A.C.", "reason": "Environmental Benefit", **changes}

    with pytest.raises(InvalidCommandError, match=message):
        RetirementClaim(**values).check()


def test_the_builder_claim_is_acceptable():
    claim().check()


# --- CommandRecord -------------------------------------------------------------------------


def record(payload: dict) -> CommandRecord:
    return CommandRecord(key="order-42", command="retire",
                         fingerprint=fingerprint("retire", payload),
                         result={"retirement_id": "R-1"})


def test_a_retry_with_the_same_command_gets_the_first_result():
    done = record({"account": "acme", "quantity": 10})

    # Key order does not matter: the fingerprint is of the content.
    again = fingerprint("retire", {"quantity": 10, "account": "acme"})

    assert done.replay("retire", again) == {"retirement_id": "R-1"}


@pytest.mark.parametrize(
    "command, payload",
    [("retire", {"account": "acme", "quantity": 11}),
     ("retire", {"account": "globex", "quantity": 10}),
     ("transfer", {"account": "acme", "quantity": 10})],
)
def test_cannot_reuse_an_idempotency_key_for_a_different_command(command, payload):
    done = record({"account": "acme", "quantity": 10})

    with pytest.raises(IdempotencyConflictError, match="order-42"):
        done.replay(command, fingerprint(command, payload))


@pytest.mark.parametrize("key", ["", "k" * 201])
def test_an_idempotency_key_has_1_to_200_characters(key):
    check_key("k" * 200)

    with pytest.raises(InvalidCommandError):
        check_key(key)


# --- copies handed to commands ----------------------------------------------------------
def test_a_copy_of_an_aggregate_has_its_state_and_changes_apart_from_it():
    from ledger.adapters.store import copy_aggregate

    original = account(INVENTORY, block(1, 100), name="inventory")
    original.collect_events()  # as saved
    copied = copy_aggregate(original)
    assert type(copied) is Account and vars(copied) == vars(original)

    copied.send(copied.pick(10, None), "acme", "T-1")
    assert copied.balance == 90 and copied.version == 3
    assert original.balance == 100 and original.version == 2  # nothing shared changed
    assert original.blocks == [block(1, 100)] and original.collect_events() == []
