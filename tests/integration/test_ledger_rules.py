"""The registry's rules, run through the Ledger service on SQLite and on PostgreSQL."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from ledger.domain.accounts import BUFFER_POOL, Account, account_id
from ledger.application import Ledger
from ledger.domain.quantities import MAX_QUANTITY
from ledger.domain.errors import (
    AccountKindError,
    CreditsAlreadyRetiredError,
    CreditsCancelledError,
    DuplicateError,
    IdempotencyConflictError,
    InsufficientCreditsError,
    InvalidCommandError,
    InvalidQuantityError,
    LedgerError,
    SerialNotFoundError,
    SerialsNotHeldError,
    UnknownAccountError,
    UnknownProjectError,
    UnknownRetirementError,
    UnknownVintageError,
)
from ledger.domain.ids import named_id
from ledger.audit.invariants import validate
from ledger.domain.issuance import FIRST_SERIAL
from ledger.domain.projects import Vintage
from ledger.read.replay import replay
from ledger.domain.retirements import RetirementClaim
from ledger.domain.serials import SerialRange
from testbed.builders import INVENTORY, claim, ledger_with_project, project_details

PROJECT = "VCS-1067"
IN_CIRCULATION = ("held", "buffer", "reserved")


# --- builders of this module ------------------------------------------------------------
def issued(ledger: Ledger, quantity: int = 1000, vintage: int = 2020, **options) -> dict:
    """Issues one batch of the builders' project (registering it first if need be)."""
    try:
        ledger.get_project(PROJECT)
    except UnknownProjectError:
        ledger_with_project(ledger)
    return ledger.issue(PROJECT, vintage, quantity, **options)


def spans(blocks) -> list[tuple[int, int]]:
    return [(block.first, block.last) for block in blocks]


def held(ledger: Ledger, name: str) -> int:
    """The account's balance; 0 for an account never opened (e.g. a pool never used)."""
    try:
        return ledger.get_account(name).balance
    except UnknownAccountError:
        return 0


def recorded(ledger: Ledger) -> tuple[int | None, list[dict]]:
    """What a refused command must leave untouched: the event log's end and every balance."""
    return ledger.recorder.max_notification_id(), ledger.caught_up_view().balances()


def comparable(rows: list[dict]) -> list[tuple]:
    return sorted((r["account"], r["project"], r["vintage"], r["status"], r["quantity"]) for r in rows)


def busy_ledger(ledger: Ledger) -> Ledger:
    """One batch of 1000 t (850 t inventory, 150 t buffer), 10 t sold to acme, who retired
    serials 1000001-1000003; serials 1000011-1000012 were cancelled from the inventory."""
    issued(ledger, 1000)
    ledger.transfer(INVENTORY, "acme", quantity=10)
    ledger.retire("acme", claim(), serials=SerialRange(FIRST_SERIAL, FIRST_SERIAL + 2))
    ledger.cancel(INVENTORY, "issued in error",
                  serials=SerialRange(FIRST_SERIAL + 10, FIRST_SERIAL + 11))
    return ledger


# --- issuance ---------------------------------------------------------------------------
def test_issuance_sends_the_projects_buffer_share_to_the_buffer_pool(ledger):
    result = issued(ledger, 1000)  # the builders' project keeps a 15 % buffer

    assert (result["quantity"], result["buffer_quantity"]) == (1000, 150)
    # The inventory gets the first serials of the batch, the pool the last ones.
    assert spans(ledger.get_account(INVENTORY).blocks) == [(FIRST_SERIAL, FIRST_SERIAL + 849)]
    assert spans(ledger.get_account(BUFFER_POOL).blocks) == [(FIRST_SERIAL + 850, FIRST_SERIAL + 999)]
    assert ledger.get_account(BUFFER_POOL).kind == "buffer"


@pytest.mark.parametrize(
    "quantity, buffer_percent, buffer_share",
    [
        (1000, "20", 200),  # an explicit percentage overrides the project's 15 %
        (10, "15", 2),  # 1.5 t rounds half up
        (10, "12.5", 1),  # 1.25 t rounds down
        (3, "50", 2),  # 1.5 t again
        (1, "50", 1),  # half a tonne is a whole buffer tonne: nothing left for sale
        (1, "49.9", 0),
        (1000, "0", 0),  # no buffer at all: the pool is not even needed
        (7, "99.99", 7),
    ],
)
def test_buffer_share_is_rounded_half_up_to_whole_tonnes(ledger, quantity, buffer_percent, buffer_share):
    result = issued(ledger, quantity, buffer_percent=Decimal(buffer_percent))

    assert result["buffer_quantity"] == buffer_share
    assert held(ledger, BUFFER_POOL) == buffer_share
    assert held(ledger, INVENTORY) == quantity - buffer_share


@pytest.mark.parametrize("buffer_percent", ["100", "-1", "150", "NaN", "Infinity"])
def test_buffer_percent_must_be_from_zero_to_below_a_hundred(ledger, buffer_percent):
    ledger_with_project(ledger)
    before = recorded(ledger)

    with pytest.raises(InvalidCommandError):
        ledger.issue(PROJECT, 2020, 100, buffer_percent=Decimal(buffer_percent))

    assert recorded(ledger) == before


def test_consecutive_issuances_get_contiguous_serials_that_never_overlap(ledger):
    batches = [issued(ledger, quantity, vintage) for quantity, vintage in
               [(1000, 2021), (1, 2019), (333, 2020), (10_000, 2021)]]

    issuances = [ledger.get_issuance(batch["batch"]) for batch in batches]
    assert [i.batch for i in issuances] == [1, 2, 3, 4]
    # Each batch starts right after the previous one ended and is as long as was issued.
    assert issuances[0].first == FIRST_SERIAL
    for previous, following in zip(issuances, issuances[1:]):
        assert following.first == previous.last + 1
    assert [i.quantity for i in issuances] == [1000, 1, 333, 10_000]
    # Within a batch the inventory's part and the pool's part meet without gap or overlap.
    for issuance in issuances:
        parts = [b for name in (INVENTORY, BUFFER_POOL) for b in ledger.get_account(name).blocks
                 if b.batch == issuance.batch]
        ordered = sorted(spans(parts))
        assert (ordered[0][0], ordered[-1][1]) == (issuance.first, issuance.last)
        assert all(left[1] + 1 == right[0] for left, right in zip(ordered, ordered[1:]))
    assert validate(replay(ledger)) == []


def test_the_largest_allowed_issuance_is_a_single_block(ledger):
    issued(ledger, MAX_QUANTITY, buffer_percent=Decimal(0))

    assert spans(ledger.get_account(INVENTORY).blocks) == [
        (FIRST_SERIAL, FIRST_SERIAL + MAX_QUANTITY - 1)
    ]


# --- transfers --------------------------------------------------------------------------
def test_transfer_by_quantity_takes_the_oldest_vintage_first(ledger):
    # Issued newest first, so that "oldest first" cannot be "first issued first".
    for vintage in (2021, 2019, 2020):
        issued(ledger, 100, vintage, buffer_percent=Decimal(0))

    ledger.transfer(INVENTORY, "acme", quantity=150)

    vintages = {}
    for block in ledger.get_account("acme").blocks:
        vintages[block.vintage] = vintages.get(block.vintage, 0) + block.quantity
    assert vintages == {2019: 100, 2020: 50}
    assert {b.vintage for b in ledger.get_account(INVENTORY).blocks} == {2020, 2021}


def test_transfer_by_serial_range_moves_exactly_those_serials(ledger):
    issued(ledger, 1000, buffer_percent=Decimal(0))
    wanted = SerialRange(FIRST_SERIAL + 100, FIRST_SERIAL + 199)

    result = ledger.transfer(INVENTORY, "acme", serials=wanted)

    assert spans(ledger.get_account("acme").blocks) == [(wanted.first, wanted.last)]
    assert spans(ledger.get_account(INVENTORY).blocks) == [
        (FIRST_SERIAL, wanted.first - 1), (wanted.last + 1, FIRST_SERIAL + 999)
    ]
    assert result["quantity"] == 100
    assert [SerialRange.parse(s) for s in result["serials"]] == [wanted]


def test_a_partial_transfer_splits_a_block_and_changes_both_balances(ledger):
    issued(ledger, 1000, buffer_percent=Decimal(0))

    ledger.transfer(INVENTORY, "acme", quantity=300)

    assert spans(ledger.get_account("acme").blocks) == [(FIRST_SERIAL, FIRST_SERIAL + 299)]
    assert spans(ledger.get_account(INVENTORY).blocks) == [(FIRST_SERIAL + 300, FIRST_SERIAL + 999)]
    view = ledger.caught_up_view()
    assert [r["quantity"] for r in view.balances(account="acme")] == [300]
    assert [r["quantity"] for r in view.balances(account=INVENTORY)] == [700]


def test_pieces_of_one_batch_received_apart_join_into_one_block(ledger):
    issued(ledger, 1000, buffer_percent=Decimal(0))

    # Sold in three lots, the middle one first: each later lot joins the run acme holds.
    for first in (FIRST_SERIAL + 10, FIRST_SERIAL, FIRST_SERIAL + 20):
        ledger.transfer(INVENTORY, "acme", serials=SerialRange(first, first + 9))
    assert spans(ledger.get_account("acme").blocks) == [(FIRST_SERIAL, FIRST_SERIAL + 29)]

    # ... so a range across the lots can be sent on at once.
    ledger.transfer("acme", "globex", serials=SerialRange(FIRST_SERIAL + 5, FIRST_SERIAL + 24))

    assert spans(ledger.get_account("acme").blocks) == [
        (FIRST_SERIAL, FIRST_SERIAL + 4), (FIRST_SERIAL + 25, FIRST_SERIAL + 29)
    ]
    assert spans(ledger.get_account("globex").blocks) == [(FIRST_SERIAL + 5, FIRST_SERIAL + 24)]


# --- retirement, cancellation, reversal -------------------------------------------------
def test_retirement_returns_a_public_id_whose_record_holds_the_blocks_and_the_claim(ledger):
    issued(ledger, 1000)
    ledger.transfer(INVENTORY, "acme", quantity=50)

    result = ledger.retire("acme", RetirementClaim("  ACME S.A.C. ", "Environmental Benefit",
                                                   details="2024 flights"), quantity=20)

    assert re.fullmatch(r"KAP-RET-[0-9A-HJKMNP-TV-Z]{12}", result["retirement_id"])
    retirement = ledger.get_retirement(result["retirement_id"])
    assert retirement.account == "acme"
    assert spans(retirement.blocks) == [(FIRST_SERIAL, FIRST_SERIAL + 19)]
    assert retirement.quantity == 20
    # The beneficiary is published as given, without the stray spaces.
    assert retirement.claim == RetirementClaim("ACME S.A.C.", "Environmental Benefit",
                                               details="2024 flights")
    # The id is case-insensitive, as people copy it from certificates.
    assert ledger.get_retirement(result["retirement_id"].lower()).blocks == retirement.blocks
    assert held(ledger, "acme") == 30


def test_an_unknown_retirement_id_is_not_found(ledger):
    with pytest.raises(UnknownRetirementError, match="KAP-RET-NOPE"):
        ledger.get_retirement("KAP-RET-NOPE")


@pytest.mark.parametrize("command", ["transfer", "retire"])
def test_retired_serials_asked_for_by_range_are_refused_as_already_retired(ledger, command):
    busy_ledger(ledger)  # acme retired serials 1000001-1000003
    before = recorded(ledger)
    retired = SerialRange(FIRST_SERIAL + 1, FIRST_SERIAL + 5)  # 1000002-1000003 are retired

    with pytest.raises(CreditsAlreadyRetiredError) as refused:
        if command == "transfer":
            ledger.transfer("acme", "globex", serials=retired)
        else:
            ledger.retire("acme", claim(), serials=retired)

    assert refused.value.missing == FIRST_SERIAL + 1
    assert str(FIRST_SERIAL + 1) in str(refused.value)
    assert recorded(ledger) == before


def test_retired_tonnes_no_longer_count_towards_a_quantity(ledger):
    busy_ledger(ledger)  # acme received 10 t and retired 3
    before = recorded(ledger)

    with pytest.raises(InsufficientCreditsError) as refused:
        ledger.transfer("acme", "globex", quantity=8)

    assert type(refused.value) is InsufficientCreditsError
    assert recorded(ledger) == before
    ledger.retire("acme", claim(), quantity=7)  # what is left can still go
    assert held(ledger, "acme") == 0


def test_cancelled_serials_cannot_be_moved_again(ledger):
    busy_ledger(ledger)  # serials 1000011-1000012 were cancelled from the inventory
    before = recorded(ledger)

    with pytest.raises(CreditsCancelledError):
        ledger.transfer(INVENTORY, "acme", serials=SerialRange(FIRST_SERIAL + 10, FIRST_SERIAL + 10))

    assert recorded(ledger) == before
    assert ledger.caught_up_view().serial_status(FIRST_SERIAL + 11) == "cancelled"


def test_cancellation_takes_tonnes_out_of_an_account_for_good(ledger):
    issued(ledger, 1000)

    result = ledger.cancel(INVENTORY, "double issuance found by the auditor", quantity=40)

    assert result["cancellation_id"].startswith("KAP-CAN-")
    assert held(ledger, INVENTORY) == 850 - 40
    state = replay(ledger)
    assert spans(state.cancelled[result["cancellation_id"]]) == [(FIRST_SERIAL, FIRST_SERIAL + 39)]
    view = ledger.caught_up_view()
    assert view.balances(account=INVENTORY, status="cancelled")[0]["quantity"] == 40


def test_a_reversal_cancels_tonnes_from_the_buffer_pool(ledger):
    issued(ledger, 1000)  # 150 t in the pool: serials 1000851-1001000
    inventory_before = ledger.get_account(INVENTORY).blocks

    result = ledger.reverse(PROJECT, 25, "fire in the concession, 2023")

    assert result["from_account"] == BUFFER_POOL
    assert held(ledger, BUFFER_POOL) == 125
    assert ledger.get_account(INVENTORY).blocks == inventory_before
    record = ledger.store.repository.get(named_id("cancellation", result["cancellation_id"]))
    assert (record.kind, record.project, record.quantity) == ("reversal", PROJECT, 25)
    assert spans(record.blocks) == [(FIRST_SERIAL + 850, FIRST_SERIAL + 874)]
    assert validate(replay(ledger)) == []


def test_a_reversal_larger_than_the_buffer_pool_is_refused(ledger):
    issued(ledger, 1000)
    before = recorded(ledger)

    with pytest.raises(InsufficientCreditsError):
        ledger.reverse(PROJECT, 151, "landslide")

    assert recorded(ledger) == before


@pytest.mark.parametrize("kind", ["holding", "inventory"])
def test_the_buffer_pools_name_cannot_be_taken_before_the_first_issuance(ledger, kind):
    ledger_with_project(ledger)

    # The pool is opened by the first issuance with a buffer share; until then its name is
    # free, and an account opened under it would receive, and could sell, every buffer share.
    with pytest.raises(LedgerError):
        ledger.open_account(BUFFER_POOL, kind, "Mallory")

    issued(ledger, 100)
    assert ledger.get_account(BUFFER_POOL).kind == "buffer"
    with pytest.raises(AccountKindError):
        ledger.transfer(BUFFER_POOL, "acme", quantity=1)


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(lambda l: l.transfer(BUFFER_POOL, "acme", quantity=1), id="transfer-out"),
        pytest.param(lambda l: l.transfer(INVENTORY, BUFFER_POOL, quantity=1), id="transfer-in"),
        pytest.param(lambda l: l.retire(BUFFER_POOL, claim(), quantity=1), id="retire"),
        pytest.param(lambda l: l.retire(BUFFER_POOL, claim(),
                                        serials=SerialRange(FIRST_SERIAL + 900, FIRST_SERIAL + 900)),
                     id="retire-range"),
        pytest.param(lambda l: l.issue(PROJECT, 2020, 10, to_account=BUFFER_POOL), id="issue-into"),
    ],
)
def test_the_buffer_pool_is_never_traded_or_retired(ledger, command):
    busy_ledger(ledger)
    before = recorded(ledger)

    with pytest.raises(AccountKindError):
        command(ledger)

    assert recorded(ledger) == before


# --- refused commands change nothing ----------------------------------------------------
REFUSALS = [
    pytest.param(lambda l: l.transfer("nobody", "acme", quantity=1), UnknownAccountError, "nobody",
                 id="transfer-from-unknown-account"),
    pytest.param(lambda l: l.transfer(INVENTORY, "nobody", quantity=1), UnknownAccountError, "nobody",
                 id="transfer-to-unknown-account"),
    pytest.param(lambda l: l.retire("nobody", claim(), quantity=1), UnknownAccountError, "nobody",
                 id="retire-from-unknown-account"),
    pytest.param(lambda l: l.cancel("nobody", "typo", quantity=1), UnknownAccountError, "nobody",
                 id="cancel-from-unknown-account"),
    pytest.param(lambda l: l.issue("VCS-9999", 2020, 10), UnknownProjectError, "VCS-9999",
                 id="issue-unknown-project"),
    pytest.param(lambda l: l.issue(PROJECT, 2018, 10), UnknownVintageError, "2018",
                 id="issue-unknown-vintage"),
    pytest.param(lambda l: l.issue(PROJECT, 2020, 10, to_account="nobody"), UnknownAccountError,
                 "nobody", id="issue-into-unknown-account"),
    pytest.param(lambda l: l.reverse("VCS-9999", 1, "fire"), UnknownProjectError, "VCS-9999",
                 id="reverse-unknown-project"),
    pytest.param(lambda l: l.add_vintage("VCS-9999", Vintage(2020)), UnknownProjectError, "VCS-9999",
                 id="vintage-of-unknown-project"),
    pytest.param(lambda l: l.transfer(INVENTORY, "acme", quantity=5,
                                      serials=SerialRange(FIRST_SERIAL + 20, FIRST_SERIAL + 24)),
                 InvalidCommandError, "either", id="both-quantity-and-serials"),
    pytest.param(lambda l: l.retire("acme", claim()), InvalidCommandError, "either",
                 id="neither-quantity-nor-serials"),
    pytest.param(lambda l: l.transfer("acme", "acme", quantity=1), InvalidCommandError, "same",
                 id="transfer-to-self"),
    pytest.param(lambda l: l.transfer(INVENTORY, "acme", quantity=839), InsufficientCreditsError, "838",
                 id="transfer-more-than-held"),
    pytest.param(lambda l: l.retire("globex", claim(), quantity=1), InsufficientCreditsError, "0 t held",
                 id="retire-from-empty-account"),
    pytest.param(lambda l: l.transfer("acme", "globex",
                                      serials=SerialRange(FIRST_SERIAL + 100, FIRST_SERIAL + 100)),
                 SerialsNotHeldError, str(FIRST_SERIAL + 100), id="serials-held-by-another-account"),
    pytest.param(lambda l: l.transfer(INVENTORY, "acme", serials=SerialRange(9_000_000, 9_000_001)),
                 SerialsNotHeldError, "9000000", id="serials-never-issued"),
    pytest.param(lambda l: l.retire("acme", claim(beneficiary="  "), quantity=1), InvalidCommandError,
                 "beneficiary", id="retire-without-beneficiary"),
    pytest.param(lambda l: l.cancel(INVENTORY, "   ", quantity=1), InvalidCommandError, "reason",
                 id="cancel-without-reason"),
    pytest.param(lambda l: l.open_account("acme"), DuplicateError, "acme", id="open-existing-account"),
]


@pytest.mark.parametrize("command, error, named", REFUSALS)
def test_a_refused_command_raises_a_named_error_and_changes_nothing(ledger, command, error, named):
    busy_ledger(ledger)
    before = recorded(ledger)

    with pytest.raises(error) as refused:
        command(ledger)

    assert named in str(refused.value)  # the message names what was wrong
    if error is InsufficientCreditsError or error is SerialsNotHeldError:
        assert type(refused.value) is error  # not "retired" or "cancelled": they were not
    assert recorded(ledger) == before


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(lambda l, wanted: l.transfer(INVENTORY, "acme", serials=wanted), id="transfer"),
        pytest.param(lambda l, wanted: l.retire(INVENTORY, claim(), serials=wanted), id="retire"),
        pytest.param(lambda l, wanted: l.cancel(INVENTORY, "typo", serials=wanted), id="cancel"),
    ],
)
def test_a_serial_range_that_ends_before_it_starts_is_refused(ledger, command):
    busy_ledger(ledger)
    before = recorded(ledger)

    # A caller of the service (not only the web form, which parses text) may build the range:
    # an empty one must not become a transfer, retirement or cancellation of nothing.
    with pytest.raises(LedgerError):
        command(ledger, SerialRange(FIRST_SERIAL + 30, FIRST_SERIAL + 20))

    assert recorded(ledger) == before


BAD_QUANTITIES = [0, -1, MAX_QUANTITY + 1, 10**30, 1.0, 2.5, "5", Decimal(5), True, False]
QUANTITY_COMMANDS = {
    "issue": lambda l, q: l.issue(PROJECT, 2020, q),
    "transfer": lambda l, q: l.transfer(INVENTORY, "acme", quantity=q),
    "retire": lambda l, q: l.retire("acme", claim(), quantity=q),
    "cancel": lambda l, q: l.cancel(INVENTORY, "typo", quantity=q),
    "reverse": lambda l, q: l.reverse(PROJECT, q, "fire"),
}


@pytest.mark.parametrize("quantity", BAD_QUANTITIES, ids=repr)
def test_quantities_are_whole_positive_tonnes_up_to_the_limit(ledger, quantity):
    busy_ledger(ledger)
    before = recorded(ledger)

    for name, command in QUANTITY_COMMANDS.items():
        with pytest.raises(InvalidQuantityError):
            command(ledger, quantity)
        assert recorded(ledger) == before, name


# --- idempotency ------------------------------------------------------------------------
REPEATABLE = [
    pytest.param(lambda l, key: l.issue(PROJECT, 2021, 500, idempotency_key=key), id="issue"),
    pytest.param(lambda l, key: l.transfer(INVENTORY, "globex", quantity=5, idempotency_key=key),
                 id="transfer"),
    pytest.param(lambda l, key: l.transfer(INVENTORY, "globex", idempotency_key=key,
                                           serials=SerialRange(FIRST_SERIAL + 500, FIRST_SERIAL + 509)),
                 id="transfer-serials"),
    pytest.param(lambda l, key: l.retire("acme", claim(), quantity=2, idempotency_key=key), id="retire"),
    pytest.param(lambda l, key: l.cancel(INVENTORY, "typo", quantity=2, idempotency_key=key),
                 id="cancel"),
    pytest.param(lambda l, key: l.reverse(PROJECT, 3, "fire", idempotency_key=key), id="reverse"),
    pytest.param(lambda l, key: l.open_account("initech", idempotency_key=key), id="open-account"),
    pytest.param(lambda l, key: l.register_project(project_details("GS-4411"), idempotency_key=key),
                 id="register-project"),
    pytest.param(lambda l, key: l.add_vintage(PROJECT, Vintage(2018), idempotency_key=key),
                 id="add-vintage"),
]


@pytest.mark.parametrize("command", REPEATABLE)
def test_a_repeated_command_returns_the_first_result_and_writes_nothing(ledger, command):
    busy_ledger(ledger)
    first = command(ledger, "order-42")
    after_first = recorded(ledger)

    # The client lost the answer and sends the very same command again.
    again = command(ledger, "order-42")

    assert again == first
    assert recorded(ledger) == after_first
    assert validate(replay(ledger)) == []


@pytest.mark.parametrize(
    "first, second",
    [
        pytest.param(lambda l, k: l.transfer(INVENTORY, "acme", quantity=5, idempotency_key=k),
                     lambda l, k: l.transfer(INVENTORY, "acme", quantity=6, idempotency_key=k),
                     id="other-quantity"),
        pytest.param(lambda l, k: l.transfer(INVENTORY, "acme", quantity=5, idempotency_key=k),
                     lambda l, k: l.transfer(INVENTORY, "globex", quantity=5, idempotency_key=k),
                     id="other-receiver"),
        pytest.param(lambda l, k: l.transfer(INVENTORY, "acme", quantity=5, idempotency_key=k),
                     lambda l, k: l.cancel(INVENTORY, "typo", quantity=5, idempotency_key=k),
                     id="other-command"),
        pytest.param(lambda l, k: l.retire("acme", claim("ACME"), quantity=1, idempotency_key=k),
                     lambda l, k: l.retire("acme", claim("Globex"), quantity=1, idempotency_key=k),
                     id="other-beneficiary"),
    ],
)
def test_reusing_a_key_for_a_different_command_is_refused(ledger, first, second):
    busy_ledger(ledger)
    first(ledger, "order-42")
    before = recorded(ledger)

    with pytest.raises(IdempotencyConflictError, match="order-42"):
        second(ledger, "order-42")

    assert recorded(ledger) == before


# --- the read model ---------------------------------------------------------------------
def two_projects(ledger: Ledger) -> Ledger:
    """VCS-1067 (2019: 100 t, 2020: 200 t) and GS-4411 (2020: 400 t), 10 % buffer each;
    acme bought 50 t of each project and retired 20 t of GS-4411; 5 t of the pool reversed."""
    ledger_with_project(ledger, buffer_percent="10")
    ledger_with_project(ledger, "GS-4411", vintages=(2020,), buffer_percent="10")
    ledger.issue("VCS-1067", 2019, 100)
    ledger.issue("VCS-1067", 2020, 200)
    ledger.issue("GS-4411", 2020, 400)
    ledger.transfer(INVENTORY, "acme", quantity=50)  # all of VCS-1067 2019 is oldest
    gs = ledger.get_issuance(3)
    ledger.transfer(INVENTORY, "acme", serials=SerialRange(gs.first, gs.first + 49))
    ledger.retire("acme", claim(), serials=SerialRange(gs.first, gs.first + 19))
    ledger.reverse("VCS-1067", 5, "fire")
    return ledger


@pytest.mark.parametrize(
    "filters, expected",
    [
        ({"account": "acme"}, [("acme", "GS-4411", 2020, "held", 30),
                               ("acme", "GS-4411", 2020, "retired", 20),
                               ("acme", "VCS-1067", 2019, "held", 50)]),
        ({"project": "GS-4411", "status": "held"}, [("acme", "GS-4411", 2020, "held", 30),
                                                    (INVENTORY, "GS-4411", 2020, "held", 310)]),
        ({"vintage": 2019}, [("acme", "VCS-1067", 2019, "held", 50),
                             (BUFFER_POOL, "VCS-1067", 2019, "buffer", 5),
                             (BUFFER_POOL, "VCS-1067", 2019, "cancelled", 5),
                             (INVENTORY, "VCS-1067", 2019, "held", 40)]),
        ({"status": "buffer"}, [(BUFFER_POOL, "GS-4411", 2020, "buffer", 40),
                                (BUFFER_POOL, "VCS-1067", 2019, "buffer", 5),
                                (BUFFER_POOL, "VCS-1067", 2020, "buffer", 20)]),
        ({"account": "globex"}, []),
    ],
)
def test_balances_filter_by_account_project_vintage_and_status(ledger, filters, expected):
    two_projects(ledger)

    rows = ledger.caught_up_view().balances(**filters)

    assert comparable(rows) == sorted(expected)


def test_balances_in_circulation_equal_a_replay_of_the_event_log(ledger):
    two_projects(ledger)

    rows = ledger.caught_up_view().balances()

    state = replay(ledger)
    assert comparable(r for r in rows if r["status"] in IN_CIRCULATION) == comparable(state.balances())
    assert validate(state) == []


def test_retired_and_cancelled_balances_equal_the_records_in_the_event_log(ledger):
    two_projects(ledger)
    state = replay(ledger)

    # The read model books retired and cancelled tonnes on the account they left.
    expected: dict[tuple, int] = {}
    for status, records in (("retired", state.retired), ("cancelled", state.cancelled)):
        for record_id, blocks in records.items():
            kind = "retirement" if status == "retired" else "cancellation"
            account = ledger.store.repository.get(named_id(kind, record_id)).account
            for block in blocks:
                key = (account, block.project, block.vintage, status)
                expected[key] = expected.get(key, 0) + block.quantity
    rows = ledger.caught_up_view().balances()

    assert comparable(r for r in rows if r["status"] not in IN_CIRCULATION) == sorted(
        (*key, quantity) for key, quantity in expected.items()
    )


def test_serial_history_tells_who_holds_a_serial_and_every_move_in_order(ledger):
    issued(ledger, 1000)
    serial = FIRST_SERIAL + 7
    # The serial is sold to acme, passed on to globex and retired there.
    sale = ledger.transfer(INVENTORY, "acme", quantity=10)
    gift = ledger.transfer("acme", "globex", serials=SerialRange(serial, serial + 2))
    retirement = ledger.retire("globex", claim("Globex"), serials=SerialRange(serial, serial))

    history = ledger.caught_up_view().serial_history(serial)

    assert (history["account"], history["status"], history["batch"]) == ("globex", "retired", 1)
    assert (history["project"], history["vintage"]) == (PROJECT, 2020)
    moves = [(h["event"], h["account"], h["counterparty"], h["reference"]) for h in history["history"]]
    assert moves == [
        ("issued", INVENTORY, None, "batch 1"),
        ("transferred", "acme", INVENTORY, sale["transfer_id"]),
        ("transferred", "globex", "acme", gift["transfer_id"]),
        ("retired", "globex", None, retirement["retirement_id"]),
    ]
    positions = [h["position"] for h in history["history"]]
    assert positions == sorted(positions)
    # Its neighbour stayed with globex, unretired.
    neighbour = ledger.caught_up_view().serial_history(serial + 1)
    assert (neighbour["account"], neighbour["status"]) == ("globex", "held")


def test_a_buffer_serial_is_shown_in_the_pool_with_status_buffer(ledger):
    issued(ledger, 1000)

    history = ledger.caught_up_view().serial_history(FIRST_SERIAL + 999)

    assert (history["account"], history["status"]) == (BUFFER_POOL, "buffer")


@pytest.mark.parametrize("serial", [1, FIRST_SERIAL - 1, FIRST_SERIAL + 1000, 10**15])
def test_a_serial_never_issued_is_not_found(ledger, serial):
    issued(ledger, 1000)  # serials 1000001-1001000

    with pytest.raises(SerialNotFoundError, match=str(serial)):
        ledger.caught_up_view().serial_history(serial)


# --- cost follows blocks ----------------------------------------------------------------
def test_retiring_one_tonne_out_of_ten_million_records_a_small_event(ledger):
    issued(ledger, 10_000_000, buffer_percent=Decimal(0))
    ledger.transfer(INVENTORY, "acme", quantity=10_000_000)
    middle = FIRST_SERIAL + 5_000_000
    position = ledger.recorder.max_notification_id()

    ledger.retire("acme", claim(), serials=SerialRange(middle, middle))

    assert spans(ledger.get_account("acme").blocks) == [
        (FIRST_SERIAL, middle - 1), (middle + 1, FIRST_SERIAL + 9_999_999)
    ]
    written = ledger.recorder.select_notifications(start=position + 1, limit=10)
    retired = [n for n in written if n.topic.endswith("Account.Retired")]
    assert len(retired) == 1
    # The event names the one block that moved, not the account's holding or its tonnes.
    assert len(retired[0].state) < 1000
    assert all(len(n.state) < 1000 for n in written)


# --- snapshots --------------------------------------------------------------------------
def test_a_busy_account_is_snapshotted_and_a_new_ledger_loads_the_same_blocks(ledger, database_url):
    issued(ledger, 1000, buffer_percent=Decimal(0))
    # 110 sales of a tonne each: the inventory passes version 100 (opened, issued, 110 sent).
    for _ in range(110):
        ledger.transfer(INVENTORY, "acme", quantity=1)

    snapshots = list(ledger.store.snapshots.get(account_id(INVENTORY)))
    assert [s.originator_version for s in snapshots] == [100]

    fresh = Ledger(database=database_url)
    try:
        loaded = fresh.get_account(INVENTORY)
        assert loaded.version == 112
        assert tuple(loaded.blocks) == tuple(ledger.get_account(INVENTORY).blocks)
        assert spans(loaded.blocks) == [(FIRST_SERIAL + 110, FIRST_SERIAL + 999)]
        assert held(fresh, "acme") == 110
    finally:
        fresh.close()


def test_an_account_restored_from_a_snapshot_equals_the_account_replayed_from_its_events(
        ledger, database_url):
    issued(ledger, 1000, buffer_percent=Decimal(0))
    # 98 sales bring the inventory to exactly version 100: its latest state is a snapshot.
    for _ in range(98):
        ledger.transfer(INVENTORY, "acme", quantity=1)
    from_events = None
    for stored_event in ledger.store.events.get(account_id(INVENTORY)):
        from_events = stored_event.mutate(from_events)
    assert isinstance(from_events, Account) and from_events.version == 100

    fresh = Ledger(database=database_url)
    try:
        from_snapshot = fresh.get_account(INVENTORY)
        assert from_snapshot.version == 100
        assert from_snapshot.blocks == from_events.blocks
        # The snapshot was taken from the account in hand at its save: nothing else differs.
        assert vars(from_snapshot) == vars(from_events)
    finally:
        fresh.close()


# --- optimistic concurrency -------------------------------------------------------------
@pytest.mark.parametrize("racing_buyer", ["globex", "acme"])
def test_a_transfer_that_lost_a_race_is_run_again_on_fresh_state(ledger, database_url, monkeypatch,
                                                                  racing_buyer):
    issued(ledger, 200, buffer_percent=Decimal(0))
    racer = Ledger(database=database_url)
    load_account = ledger.get_account
    raced = []

    def load_account_while_another_sale_lands(name: str):
        account = load_account(name)
        if name == INVENTORY and not raced:
            # Between our loading the inventory and loading the buyer, another process sells
            # the same oldest five tonnes: our inventory is stale, the buyer is not.
            raced.append(racer.transfer(INVENTORY, racing_buyer, quantity=5))
        return account

    monkeypatch.setattr(ledger, "get_account", load_account_while_another_sale_lands)
    try:
        result = ledger.transfer(INVENTORY, "acme", quantity=5)
    finally:
        racer.close()

    # Our sale gets the next five tonnes; nobody is told the serials are "already held".
    assert [SerialRange.parse(s) for s in result["serials"]] == [
        SerialRange(FIRST_SERIAL + 5, FIRST_SERIAL + 9)
    ]
    assert held(ledger, INVENTORY) == 190
    assert held(ledger, "acme") == (10 if racing_buyer == "acme" else 5)
    assert validate(replay(ledger)) == []
