"""Rules of sale proceeds: benefit-sharing rules, farms, the split of a sale and the journal
of what is owed and paid out."""

from __future__ import annotations

import functools
import pickle
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from uuid import UUID

import pytest
from eventsourcing.application import Application
from eventsourcing.persistence import IntegrityError
from hypothesis import given
from hypothesis import strategies as st

from ledger.domain.ids import named_id
from market.domain.errors import (
    InvalidFarmError,
    InvalidMoneyError,
    InvalidPayoutError,
    InvalidRuleError,
    InvalidSaleError,
    NoRuleInForceError,
    OverpaidError,
    PayoutAlreadyRecordedError,
    SaleAlreadyRecordedError,
    UnknownCurrencyError,
    UnknownFarmError,
    UnknownRecipientError,
)
from market.domain.proceeds import (
    CASH,
    FARMERS,
    PAYMENT_FEES,
    PAYOUT,
    Allocation,
    BenefitSharingRule,
    Farm,
    FarmDetails,
    JournalEntry,
    Posting,
    ProceedsLedger,
    RuleVersion,
    SaleProceeds,
    payee_of,
    split_proceeds,
    validate_balanced,
)
from market.adapters.transcodings import MARKET_TRANSCODINGS

REGISTRY = "VCS-1067"
AIDER = "aider-field-programme"
FEE = "ecosphere-fee"
SHARES = {FARMERS: Decimal(60), AIDER: Decimal(25), FEE: Decimal(15)}
JAN_2024 = datetime(2024, 1, 1, tzinfo=timezone.utc)
JULY_2024 = datetime(2024, 7, 1, tzinfo=timezone.utc)


def rule_of(*versions: tuple[dict, datetime]) -> BenefitSharingRule:
    rule = BenefitSharingRule.create(REGISTRY)
    for shares, effective_from in versions:
        rule.set_shares(shares, effective_from)
    return rule


def version(shares: dict | None = None) -> RuleVersion:
    return rule_of((shares or SHARES, JAN_2024)).rule_at(JAN_2024)


def farm(code: str, agroforestry: str = "1", weight: str | None = None, active: bool = True,
         registry_id: str = REGISTRY) -> Farm:
    details = FarmDetails(f"Family {code}", Decimal("10"), Decimal(agroforestry),
                          None if weight is None else Decimal(weight))
    registered = Farm.register(registry_id, code, details)
    if not active:
        registered.deactivate()
    return registered


def replayed(aggregate):
    """A fresh aggregate rebuilt from the events the given one collected."""
    return functools.reduce(lambda state, event: event.mutate(state), aggregate.collect_events(),
                            None)


def split(amount: int, farms=(), shares: dict | None = None) -> list[tuple]:
    allocations = split_proceeds(amount, "USD", version(shares), list(farms))
    return [(a.recipient, a.farm_code, a.minor) for a in allocations]


def nothing_saved(_aggregate_id: UUID) -> bool:
    """What the store says while nothing is saved in it (a fake of ``Store.exists``)."""
    return False


def journal_with_sale(amount: int = 10000, fee: int | None = None, order_id: str = "order-1",
                      on: date = date(2024, 5, 1)) -> ProceedsLedger:
    journal = ProceedsLedger.open("USD")
    sell(journal, amount, fee, order_id, on)
    return journal


def sell(journal: ProceedsLedger, amount: int, fee: int | None = None,
         order_id: str = "order-1", on: date = date(2024, 5, 1), project: str | None = None,
         exists=nothing_saved) -> SaleProceeds:
    farms = [farm("F-1", "2"), farm("F-2", "1"), farm("F-3", "1")]
    allocations = split_proceeds(amount, journal.currency, version(), farms)
    return journal.record_sale(order_id, amount, allocations, fee, received_on=on,
                               project=project, exists=exists)


def pay(journal: ProceedsLedger, recipient: str, farm_code: str | None, amount: int,
        on: date = date(2024, 6, 1), reference: str = "BCP-1", exists=nothing_saved):
    return journal.record_payout(recipient, farm_code, amount, on, reference, exists=exists)


def entries_of(journal: ProceedsLedger) -> list[JournalEntry]:
    """The entries in the journal's events not yet saved (the view lists saved ones)."""
    return [event.entry for event in journal.pending_events if hasattr(event, "entry")]


def audit(journal: ProceedsLedger) -> list[str]:
    return validate_balanced(journal, entries_of(journal))


# --- Benefit-sharing rules -----------------------------------------------------------------


def test_a_rule_is_named_by_its_project_and_has_no_version_in_force_at_first():
    rule = BenefitSharingRule.create(REGISTRY)

    assert rule.id == named_id("benefit-rule", REGISTRY)
    assert rule.versions == []
    with pytest.raises(NoRuleInForceError, match=REGISTRY):
        rule.rule_at(JULY_2024)


def test_shares_are_recorded_as_a_numbered_version_in_recipient_order():
    rule = BenefitSharingRule.create(REGISTRY)

    recorded = rule.set_shares({FEE: 15, FARMERS: 60, AIDER: Decimal("25.0")}, JAN_2024)

    assert recorded == RuleVersion(1, SHARES, JAN_2024)
    assert list(recorded.shares) == [AIDER, FEE, FARMERS]
    assert all(isinstance(share, Decimal) for share in recorded.shares.values())


def test_shares_with_decimal_places_may_sum_to_exactly_100():
    shares = {FARMERS: Decimal("33.34"), AIDER: Decimal("33.33"), FEE: Decimal("33.33")}

    assert rule_of((shares, JAN_2024)).rule_at(JAN_2024).shares == shares


def test_a_rule_need_not_share_with_farmers():
    assert version({AIDER: 100}).shares == {AIDER: Decimal(100)}


@pytest.mark.parametrize(
    "shares",
    [
        {FARMERS: 60, AIDER: 25, FEE: 14},
        {FARMERS: 60, AIDER: 25, FEE: 16},
        {FARMERS: 100, AIDER: 0},
        {FARMERS: 110, AIDER: -10},
        {FARMERS: 60.0, AIDER: 40},
        {FARMERS: True, AIDER: 99},
        {FARMERS: Decimal("NaN"), AIDER: 40},
        {FARMERS: Decimal("Infinity"), AIDER: 40},
        {"Farmers": 60, AIDER: 40},
        {"farmers ": 60, AIDER: 40},
        {"aider:field": 40, FARMERS: 60},
        {"": 40, FARMERS: 60},
        {},
    ],
)
def test_shares_must_be_positive_percentages_of_lower_case_recipients_summing_to_100(shares):
    rule = BenefitSharingRule.create(REGISTRY)

    with pytest.raises(InvalidRuleError):
        rule.set_shares(shares, JAN_2024)
    assert rule.versions == []


def test_every_problem_with_the_shares_is_named_at_once():
    with pytest.raises(InvalidRuleError) as refused:
        BenefitSharingRule.create(REGISTRY).set_shares({"Farmers": 60, AIDER: 0}, JAN_2024)

    assert "'Farmers'" in str(refused.value) and AIDER in str(refused.value)


@pytest.mark.parametrize("moment", [datetime(2024, 1, 1), date(2024, 1, 1), "2024-01-01"])
def test_a_version_starts_at_a_timezone_aware_moment(moment):
    with pytest.raises(InvalidRuleError):
        BenefitSharingRule.create(REGISTRY).set_shares(SHARES, moment)


@pytest.mark.parametrize("registry_id", ["", "VCS 1067", "VCS:1067", "VCS-", None])
def test_a_rule_needs_a_valid_registry_id(registry_id):
    with pytest.raises(InvalidRuleError):
        BenefitSharingRule.create(registry_id)


@pytest.mark.parametrize("later", [JULY_2024, JAN_2024, JAN_2024 - timedelta(days=1)])
def test_a_new_version_must_start_after_the_latest_so_paid_sales_keep_their_rule(later):
    rule = rule_of((SHARES, JULY_2024))

    with pytest.raises(InvalidRuleError, match="must start later"):
        rule.set_shares({FARMERS: 70, AIDER: 20, FEE: 10}, later)


@pytest.mark.parametrize(
    "moment, expected",
    [
        (JAN_2024, 1),
        (JULY_2024 - timedelta(microseconds=1), 1),
        (JULY_2024, 2),
        (datetime(2024, 7, 1, 1, tzinfo=timezone(timedelta(hours=1))), 2),
        (datetime(2030, 1, 1, tzinfo=timezone.utc), 2),
    ],
)
def test_the_rule_at_a_moment_is_the_latest_version_in_force_then(moment, expected):
    rule = rule_of((SHARES, JAN_2024), ({FARMERS: 70, AIDER: 20, FEE: 10}, JULY_2024))

    assert rule.rule_at(moment).version == expected


def test_no_rule_is_in_force_before_the_first_version():
    rule = rule_of((SHARES, JULY_2024))

    with pytest.raises(NoRuleInForceError):
        rule.rule_at(JAN_2024)
    with pytest.raises(InvalidRuleError):
        rule.rule_at(datetime(2024, 8, 1))


def test_a_rule_replays_from_its_events_to_the_same_state():
    rule = rule_of((SHARES, JAN_2024), ({FARMERS: 70, AIDER: 30}, JULY_2024))

    rebuilt = replayed(rule)

    assert rebuilt == rule
    assert rebuilt.rule_at(JULY_2024).shares == {AIDER: 30, FARMERS: 70}


# --- Farms ---------------------------------------------------------------------------------


def test_a_registered_farm_is_active_and_named_by_its_project_and_code():
    registered = Farm.register(REGISTRY, "F-001",
                               FarmDetails("Familia Quispe", Decimal("12.5"), Decimal("3.25")))

    assert registered.id == named_id("farm", f"{REGISTRY}:F-001")
    assert (registered.registry_id, registered.farm_code) == (REGISTRY, "F-001")
    assert registered.details.farmer_name == "Familia Quispe"
    assert registered.active
    assert registered.share_weight == Decimal("3.25")


def test_a_weight_override_replaces_the_agroforestry_hectares():
    assert farm("F-1", agroforestry="3", weight="0.5").share_weight == Decimal("0.5")


@pytest.mark.parametrize(
    "details",
    [
        FarmDetails("", Decimal(1), Decimal(1)),
        FarmDetails("   ", Decimal(1), Decimal(1)),
        FarmDetails("x" * 201, Decimal(1), Decimal(1)),
        FarmDetails("Quispe", Decimal(-1), Decimal(1)),
        FarmDetails("Quispe", Decimal(1), Decimal("-0.01")),
        FarmDetails("Quispe", Decimal(1), 2.5),
        FarmDetails("Quispe", 1, Decimal(1)),
        FarmDetails("Quispe", Decimal(1), Decimal("NaN")),
        FarmDetails("Quispe", Decimal(1), Decimal(1), weight=Decimal(-1)),
        FarmDetails("Quispe", Decimal(1), Decimal(1), weight=Decimal("Infinity")),
    ],
)
def test_a_farm_needs_a_name_and_finite_decimal_hectares_of_at_least_zero(details):
    with pytest.raises(InvalidFarmError):
        Farm.register(REGISTRY, "F-1", details)


@pytest.mark.parametrize("code", ["", "F 1", "F:1", "F-", "F-\u00e9", None])
def test_a_farm_needs_an_ascii_code(code):
    with pytest.raises(InvalidFarmError):
        Farm.register(REGISTRY, code, FarmDetails("Quispe", Decimal(1), Decimal(1)))


def test_updating_a_farm_replaces_its_details_and_records_nothing_if_unchanged():
    updated = farm("F-1")
    updated.collect_events()

    updated.update(replace(updated.details, agroforestry_ha=Decimal("4.5")))
    updated.update(replace(updated.details))

    assert updated.share_weight == Decimal("4.5")
    assert [type(e).__name__ for e in updated.collect_events()] == ["Updated"]


def test_an_update_is_checked_like_a_registration():
    updated = farm("F-1")

    with pytest.raises(InvalidFarmError):
        updated.update(replace(updated.details, forest_ha=Decimal(-3)))
    assert updated.details.forest_ha == Decimal(10)


def test_a_farm_is_deactivated_and_reactivated_once_each():
    changed = farm("F-1")
    changed.collect_events()

    changed.deactivate()
    changed.deactivate()
    assert not changed.active
    changed.reactivate()
    changed.reactivate()

    assert changed.active
    assert [type(e).__name__ for e in changed.collect_events()] == ["Deactivated", "Reactivated"]


def test_a_farm_replays_from_its_events_to_the_same_state():
    changed = farm("F-1", weight="2")
    changed.update(replace(changed.details, farmer_name="Familia Mamani"))
    changed.deactivate()

    assert replayed(changed) == changed


# --- Splitting a sale ----------------------------------------------------------------------


def test_a_sale_is_split_by_the_rule_then_the_farmers_part_by_agroforestry_hectares():
    farms = [farm("F-1", "2"), farm("F-2", "1"), farm("F-3", "1")]

    assert split(10000, farms) == [
        (AIDER, None, 2500),
        (FEE, None, 1500),
        (FARMERS, "F-1", 3000),
        (FARMERS, "F-2", 1500),
        (FARMERS, "F-3", 1500),
    ]


def test_the_odd_cents_go_to_the_largest_remainders():
    farms = [farm("F-1", "2"), farm("F-2", "1"), farm("F-3", "1")]

    # 1001 = 600.6 + 250.25 + 150.15: the farmers' .6 wins the odd cent; then 601 across
    # 2:1:1 farms = 300.5 + 150.25 + 150.25, and F-1's .5 wins it again.
    assert split(1001, farms) == [
        (AIDER, None, 250), (FEE, None, 150),
        (FARMERS, "F-1", 301), (FARMERS, "F-2", 150), (FARMERS, "F-3", 150),
    ]


def test_a_weight_override_counts_instead_of_hectares():
    farms = [farm("F-1", "9", weight="1"), farm("F-2", "1")]

    assert split(10000, farms)[2:] == [(FARMERS, "F-1", 3000), (FARMERS, "F-2", 3000)]


def test_inactive_farms_and_farms_of_zero_weight_share_nothing():
    farms = [farm("F-1", "5", active=False), farm("F-2", "1"), farm("F-3", "0"),
             farm("F-4", "7", weight="0")]

    assert split(10000, farms)[2:] == [(FARMERS, "F-2", 6000)]


@pytest.mark.parametrize(
    "farms",
    [[], [farm("F-1", active=False)], [farm("F-1", "0"), farm("F-2", "3", weight="0")]],
)
def test_with_no_farm_to_share_it_the_farmers_part_is_kept_for_the_farmers(farms):
    assert split(10000, farms) == [(AIDER, None, 2500), (FEE, None, 1500),
                                   (FARMERS, None, 6000)]


def test_farms_split_the_same_however_they_are_listed():
    farms = [farm("F-3", "1"), farm("F-1", "1"), farm("F-2", "1")]

    assert split(100, farms) == split(100, sorted(farms, key=lambda f: f.farm_code))
    assert split(100, farms)[-3:] == [(FARMERS, "F-1", 20), (FARMERS, "F-2", 20),
                                      (FARMERS, "F-3", 20)]


def test_parts_of_zero_are_left_out():
    assert split(1, [farm("F-1"), farm("F-2")]) == [(FARMERS, "F-1", 1)]
    assert split(0, [farm("F-1")]) == []


def test_a_rule_without_farmers_ignores_the_farms():
    assert split(999, [farm("F-1")], {AIDER: 50, FEE: 50}) == [(AIDER, None, 500),
                                                                (FEE, None, 499)]


@pytest.mark.parametrize(
    "farms",
    [[farm("F-1"), farm("F-1", "2")], [farm("F-1"), farm("F-2", registry_id="VCS-981")]],
)
def test_farms_of_one_sale_have_distinct_codes_and_one_project(farms):
    with pytest.raises(InvalidFarmError):
        split(100, farms)


@pytest.mark.parametrize("amount", [-1, 1.5, True, Decimal(100)])
def test_the_amount_to_split_is_whole_minor_units_of_at_least_zero(amount):
    with pytest.raises(InvalidMoneyError):
        split_proceeds(amount, "USD", version(), [])


def test_the_amount_to_split_is_in_a_known_currency():
    with pytest.raises(UnknownCurrencyError):
        split_proceeds(100, "XYZ", version(), [])


RECIPIENTS = ["aider-field-programme", "ecosphere-fee", "community-fund", "health-post", FARMERS]


@st.composite
def share_tables(draw) -> dict[str, Decimal]:
    """Random recipients with shares of up to two decimal places that sum to exactly 100."""
    names = draw(st.lists(st.sampled_from(RECIPIENTS), min_size=1, max_size=5, unique=True))
    cuts = draw(st.lists(st.integers(1, 9999), min_size=len(names) - 1,
                         max_size=len(names) - 1, unique=True))
    bounds = [0, *sorted(cuts), 10000]
    return {name: Decimal(high - low).scaleb(-2)
            for name, (low, high) in zip(names, zip(bounds, bounds[1:]))}


@st.composite
def farm_sets(draw) -> list[Farm]:
    hectares = st.decimals(min_value=0, max_value=50, places=2)
    count = draw(st.integers(0, 8))
    return [
        farm(f"F-{n}", str(draw(hectares)),
             weight=draw(st.none() | hectares.map(str)), active=draw(st.booleans()))
        for n in range(count)
    ]


@given(st.integers(0, 10**12), share_tables(), farm_sets())
def test_a_split_always_sums_exactly_to_the_amount(amount, shares, farms):
    allocations = split_proceeds(amount, "USD", version(shares), farms)

    assert sum(a.minor for a in allocations) == amount
    assert all(a.minor > 0 for a in allocations)
    assert {a.recipient for a in allocations} <= set(shares)
    assert all(a.recipient == FARMERS for a in allocations if a.farm_code is not None)
    sharing = {f.farm_code for f in farms if f.active and f.share_weight > 0}
    assert {a.farm_code for a in allocations if a.farm_code} <= sharing


# --- The proceeds journal ------------------------------------------------------------------


def test_a_journal_is_opened_per_known_currency():
    assert ProceedsLedger.open("PEN").id == named_id("proceeds", "PEN")
    with pytest.raises(UnknownCurrencyError):
        ProceedsLedger.open("BTC")


def test_a_sale_posts_the_cash_received_against_what_each_payee_is_owed():
    journal = journal_with_sale(10000)

    assert journal.debits == {CASH: 10000}
    assert journal.owed(AIDER) == 2500
    assert journal.owed(FEE) == 1500
    assert [journal.owed(FARMERS, code) for code in ("F-1", "F-2", "F-3")] == [3000, 1500, 1500]
    assert journal.owed(FARMERS) == 0
    assert audit(journal) == []


def test_a_known_payment_fee_is_booked_apart_and_payees_are_owed_their_whole_share():
    journal = journal_with_sale(10000, fee=320)

    assert journal.debits == {CASH: 9680, PAYMENT_FEES: 320}
    assert journal.owed(AIDER) == 2500
    assert audit(journal) == []


def test_a_sale_is_kept_apart_named_by_its_currency_and_order():
    journal = ProceedsLedger.open("USD")

    sale = sell(journal, 10000, fee=120, order_id="order-7", project=REGISTRY)

    assert sale.id == named_id("sale-proceeds", "USD/order-7")
    assert (sale.currency, sale.order_id, sale.refunded) == ("USD", "order-7", False)
    assert entries_of(journal) == [sale.entry]


def test_an_order_is_recorded_once_and_a_retry_is_refused_by_name():
    journal = ProceedsLedger.open("USD")
    saved = {sell(journal, 10000, order_id="order-7").id}

    with pytest.raises(SaleAlreadyRecordedError) as refused:
        sell(journal, 10000, order_id="order-7", exists=saved.__contains__)

    assert refused.value.order_id == "order-7"
    assert journal.owed(AIDER) == 2500
    assert len(entries_of(journal)) == 1


@pytest.mark.parametrize(
    "order_id, amount, fee",
    [("", 100, None), ("x" * 201, 100, None), (None, 100, None), ("o", 0, None),
     ("o", -100, None), ("o", 100.0, None), ("o", 100, -1), ("o", 100, 101), ("o", 100, 1.5)],
)
def test_a_sale_needs_an_order_id_a_positive_amount_and_a_fee_within_it(order_id, amount, fee):
    allocations = [Allocation(AIDER, None, 100)]

    with pytest.raises(InvalidSaleError):
        ProceedsLedger.open("USD").record_sale(order_id, amount, allocations, fee,
                                               exists=nothing_saved)


@pytest.mark.parametrize(
    "allocations",
    [
        [Allocation(AIDER, None, 60)],
        [Allocation(AIDER, None, 60), Allocation(FEE, None, 50)],
        [],
        [Allocation(AIDER, "F-1", 100)],
        [Allocation("Aider", None, 100)],
        [Allocation(FARMERS, "F:1", 100)],
        [Allocation(AIDER, None, 110), Allocation(FEE, None, -10)],
        [(AIDER, None, 100)],
    ],
)
def test_a_sale_books_allocations_to_valid_payees_that_sum_to_its_amount(allocations):
    journal = ProceedsLedger.open("USD")

    with pytest.raises(InvalidSaleError):
        journal.record_sale("order-1", 100, allocations, exists=nothing_saved)
    assert entries_of(journal) == [] and journal.credits == {}


def test_a_sale_is_dated_today_unless_told():
    journal = ProceedsLedger.open("USD")

    sale = journal.record_sale("order-1", 100, [Allocation(AIDER, None, 100)],
                               exists=nothing_saved)

    assert sale.entry.on == datetime.now(timezone.utc).date()
    with pytest.raises(InvalidSaleError):
        journal.record_sale("order-2", 100, [Allocation(AIDER, None, 100)],
                            received_on=datetime(2024, 5, 1, tzinfo=timezone.utc),
                            exists=nothing_saved)


def test_a_payout_lowers_what_is_owed_by_what_is_paid_out():
    journal = journal_with_sale(10000)

    pay(journal, FARMERS, "F-1", 1200, reference="BCP-0001")
    pay(journal, AIDER, None, 2500, reference="BCP-0002")

    assert journal.allocated(FARMERS, "F-1") == 3000
    assert journal.paid_out(FARMERS, "F-1") == 1200
    assert journal.owed(FARMERS, "F-1") == 1800
    assert journal.owed(AIDER) == 0
    assert audit(journal) == []


def test_a_payee_cannot_be_paid_more_than_is_owed():
    journal = journal_with_sale(10000)
    pay(journal, FARMERS, "F-2", 1000, date(2024, 6, 1), "BCP-0001")

    with pytest.raises(OverpaidError, match="USD 5.00 is owed"):
        pay(journal, FARMERS, "F-2", 501, date(2024, 6, 2), "BCP-0002")
    pay(journal, FARMERS, "F-2", 500, date(2024, 6, 2), "BCP-0002")
    with pytest.raises(OverpaidError):
        pay(journal, FARMERS, "F-2", 1, date(2024, 6, 3), "BCP-0003")


@pytest.mark.parametrize(
    "amount, paid_on, reference",
    [(0, date(2024, 6, 1), "BCP-1"), (-5, date(2024, 6, 1), "BCP-1"),
     (1.0, date(2024, 6, 1), "BCP-1"), (5, datetime(2024, 6, 1), "BCP-1"),
     (5, "2024-06-01", "BCP-1"), (5, date(2024, 6, 1), ""), (5, date(2024, 6, 1), None)],
)
def test_a_payout_needs_a_positive_amount_a_date_and_a_reference(amount, paid_on, reference):
    journal = journal_with_sale(10000)

    with pytest.raises(InvalidPayoutError):
        pay(journal, AIDER, None, amount, paid_on, reference)
    assert journal.paid_out(AIDER) == 0


@pytest.mark.parametrize("recipient, farm_code",
                         [("farmers:F-1", None), ("Aider", None), (FARMERS, "F 1"), (None, None)])
def test_a_payout_names_its_payee_as_the_journal_spells_it(recipient, farm_code):
    journal = journal_with_sale(10000)

    with pytest.raises(InvalidPayoutError):
        pay(journal, recipient, farm_code, 1)
    assert journal.paid_out(FARMERS, "F-1") == 0


def test_a_payout_names_a_payee_that_was_allocated_something():
    journal = journal_with_sale(10000)

    with pytest.raises(UnknownFarmError, match="F-9"):
        pay(journal, FARMERS, "F-9", 1)
    with pytest.raises(UnknownRecipientError, match="school"):
        pay(journal, "school", None, 1)


def test_a_payout_reference_is_used_once_per_payee():
    journal = journal_with_sale(10000)
    saved = {pay(journal, FARMERS, "F-1", 100, reference="BCP-batch-9").id}

    pay(journal, FARMERS, "F-2", 100, reference="BCP-batch-9", exists=saved.__contains__)
    with pytest.raises(PayoutAlreadyRecordedError):
        pay(journal, FARMERS, "F-1", 100, reference="BCP-batch-9", exists=saved.__contains__)
    assert journal.paid_out(FARMERS, "F-1") == 100


def test_a_payout_is_named_by_currency_payee_and_reference_however_the_reference_reads():
    journal = journal_with_sale(10000)  # the farmers' part to their farms...
    journal.record_sale("order-2", 10000, split_proceeds(10000, "USD", version(), []),
                        exists=nothing_saved)  # ...and, with no farm yet, to them as a whole

    to_farm = pay(journal, FARMERS, "F-1", 100, reference="r")
    to_all_farmers = pay(journal, FARMERS, None, 100, reference="F-1:r")

    assert to_farm.id == named_id("payout", "USD/payable:farmers:F-1/r")
    assert to_all_farmers.id != to_farm.id


def test_the_farmers_kept_part_can_be_paid_out_as_a_whole():
    journal = ProceedsLedger.open("USD")
    journal.record_sale("order-1", 10000, split_proceeds(10000, "USD", version(), []),
                        exists=nothing_saved)

    pay(journal, FARMERS, None, 6000, reference="cooperative-1")

    assert journal.owed(FARMERS) == 0


def test_the_journal_keeps_what_each_project_was_allocated_less_refunds():
    journal = ProceedsLedger.open("USD")
    sell(journal, 10000, order_id="order-1", project="KAP-AF-01")
    refunded = sell(journal, 2000, order_id="order-2", project="KAP-AF-01")
    sell(journal, 4000, order_id="order-3", project=REGISTRY)
    pay(journal, AIDER, None, 100)

    journal.record_refund(refunded, date(2024, 6, 2))

    assert journal.totals_by_project() == {"KAP-AF-01": 10000, REGISTRY: 4000}
    assert audit(journal) == []


def test_the_journal_state_does_not_grow_with_the_number_of_sales():
    def state_after(sales: int) -> bytes:
        journal = ProceedsLedger.open("USD")
        for n in range(sales):
            sale = sell(journal, 10000 + n, fee=n % 7, order_id=f"order-{n}", project=REGISTRY)
            if n % 3 == 0:
                pay(journal, AIDER, None, 10, reference=f"BCP-{n}")
            if n % 5 == 0:
                journal.record_refund(sale, date(2024, 6, 1))
        return pickle.dumps({key: value for key, value in vars(journal).items()
                             if key != "_pending_events"})  # events are saved, not kept

    assert len(state_after(300)) <= len(state_after(30)) + 32  # larger totals, no more keys


def test_the_balance_check_names_every_entry_and_total_that_does_not_balance():
    journal = journal_with_sale(10000)
    (entry,) = entries_of(journal)
    tampered = replace(entry, postings=entry.postings[1:])
    journal.credits[payee_account := "payable:" + AIDER] += 1

    problems = validate_balanced(journal, [tampered])

    assert any("order-1" in problem for problem in problems)
    assert any(payee_account in problem for problem in problems)
    assert any("total debits" in problem for problem in problems)


def test_the_balance_check_names_a_payee_paid_more_than_allocated():
    journal = journal_with_sale(100)
    # A payout entry slipped past record_payout's check (as a tampered store would hold).
    journal._payout_recorded(JournalEntry(PAYOUT, "forged", date(2024, 6, 1), (
        Posting("payable:" + AIDER, 26), Posting(CASH, -26))))

    assert any("more than the 25 allocated" in p for p in audit(journal))


def test_the_balance_check_names_an_entry_booked_twice_and_a_refund_of_no_sale():
    journal = journal_with_sale(100, order_id="order-1")
    (sale,) = entries_of(journal)
    refund = sale.reversed(date(2024, 6, 1))

    problems = validate_balanced(journal, [sale, sale, replace(refund, reference="order-2")])

    assert "sale order-1 is booked more than once" in problems
    assert "refund order-2 reverses no sale booked before it" in problems
    assert any(problem.startswith("credits of payable:") for problem in problems)


def test_a_refund_withdraws_every_allocation_of_the_sale_and_keeps_the_journal_balanced():
    journal = ProceedsLedger.open("USD")
    sale = sell(journal, 10000, fee=120)
    before = {key: journal.owed(*key) for key in ((FARMERS, "F-1"), (AIDER, None))}

    entry = journal.record_refund(sale, date(2024, 6, 2))

    assert entry.kind == "refund" and sum(p.amount for p in entry.postings) == 0
    assert entry.postings == tuple(Posting(p.account, -p.amount) for p in sale.entry.postings)
    assert all(journal.owed(*key) == 0 for key in before) and any(before.values())
    assert all(journal.allocated(*key) == journal.paid_out(*key) == 0 for key in before)
    assert audit(journal) == []
    assert sale.refunded and sale.refunded_on == date(2024, 6, 2)
    with pytest.raises(SaleAlreadyRecordedError):
        journal.record_refund(sale, date(2024, 6, 3))


def test_a_refund_after_a_payout_leaves_the_payee_owing_it_back_without_an_audit_problem():
    journal = ProceedsLedger.open("USD")
    sale = sell(journal, 10000)
    paid = journal.owed(FARMERS, "F-1")
    pay(journal, FARMERS, "F-1", paid)

    journal.record_refund(sale, date(2024, 6, 2))

    assert journal.owed(FARMERS, "F-1") == -paid  # netted against the farm's next sales
    assert (journal.allocated(FARMERS, "F-1"), journal.paid_out(FARMERS, "F-1")) == (0, paid)
    assert audit(journal) == []
    with pytest.raises(OverpaidError):
        pay(journal, FARMERS, "F-1", 1, date(2024, 6, 3), "BCP-2")


def test_a_refund_reverses_a_sale_booked_in_the_same_journal():
    sale_in_euros = sell(ProceedsLedger.open("EUR"), 100)
    journal = journal_with_sale(100)

    with pytest.raises(InvalidSaleError, match="booked in EUR"):
        journal.record_refund(sale_in_euros, date(2024, 6, 2))
    with pytest.raises(InvalidSaleError, match="booked sale"):
        journal.record_refund("order-1", date(2024, 6, 2))
    assert journal.withdrawn == {} and not sale_in_euros.refunded


def test_a_partial_refund_withdraws_that_money_split_as_the_sale_was():
    journal = ProceedsLedger.open("USD")
    sale = sell(journal, 10000, fee=300, project=REGISTRY)

    entry = journal.record_refund(sale, date(2024, 6, 2), 1000)

    payees = {p.account: p.amount for p in entry.postings if p.account.startswith("payable:")}
    assert sum(payees.values()) == 1000 and sum(p.amount for p in entry.postings) == 0
    assert payees["payable:farmers:F-1"] == 300  # half the farmers' 60 %, as in the sale
    assert (sale.refunded, sale.refunded_minor) == (False, 1000)
    assert journal.totals_by_project() == {REGISTRY: 9000}
    assert audit(journal) == []
    assert replayed(sale) == sale


def test_partial_refunds_accumulate_and_never_exceed_the_sale():
    journal = ProceedsLedger.open("USD")
    sale = sell(journal, 10000, project=REGISTRY)
    journal.record_refund(sale, date(2024, 6, 2), 1)
    journal.record_refund(sale, date(2024, 6, 3), 4999)

    with pytest.raises(InvalidSaleError, match="cannot refund 5001 of the USD 50.00 left"):
        journal.record_refund(sale, date(2024, 6, 4), 5001)
    journal.record_refund(sale, date(2024, 6, 4))  # the rest

    assert sale.refunded and journal.totals_by_project() == {REGISTRY: 0}
    assert all(journal.allocated(*payee) == 0 for payee in journal.payees())
    assert audit(journal) == []


def test_the_balance_check_names_refunds_beyond_their_sale():
    journal = journal_with_sale(100)
    sale = entries_of(journal)[0]
    refund = sale.reversed(date(2024, 6, 1))

    problems = validate_balanced(journal, [sale, refund, refund])

    assert "refunds of order-1 exceed its sale" in problems


@given(st.integers(1, 10**7), st.integers(0, 100),
       st.lists(st.integers(1, 10**7), min_size=1, max_size=8))
def test_refunds_in_parts_sum_exactly_and_take_no_line_below_zero(amount, fee_percent, parts):
    journal = ProceedsLedger.open("USD")
    sale = sell(journal, amount, fee=amount * fee_percent // 100)
    booked = {p.account: abs(p.amount) for p in sale.entry.postings}
    for part in parts:
        left = amount - sale.refunded_minor
        if left == 0:
            break
        entry = journal.record_refund(sale, date(2024, 6, 2), min(part, left))
        assert sum(p.amount for p in entry.postings if p.amount > 0) == min(part, left)
        assert all(sale.reversed_lines.get(account, 0) <= booked[account]
                   for account in booked) or sale.refunded
    assert audit(journal) == []


def test_a_journal_replays_from_its_events_to_the_same_state():
    journal = ProceedsLedger.open("USD")
    sale = sell(journal, 10000, fee=120, project=REGISTRY)
    journal.record_refund(sale, date(2024, 6, 1))
    sell(journal, 5000, order_id="order-2", project=REGISTRY)
    pay(journal, FARMERS, "F-1", 1000)

    assert replayed(journal) == journal
    assert replayed(sale) == sale


@given(st.lists(st.tuples(st.sampled_from(["sale", "payout", "refund"]),
                          st.integers(1, 10**9), st.integers(0, 150), st.integers(0, 20)),
                max_size=25))
def test_random_sales_refunds_and_payouts_keep_the_journal_balanced_and_never_overpay(
        operations):
    journal = ProceedsLedger.open("EUR")
    sales: list[SaleProceeds] = []
    sold = fees = paid = 0
    for n, (kind, amount, percent, pick) in enumerate(operations):
        on = date(2024, 1, 1) + timedelta(days=n)
        if kind == "sale":
            fee = amount * percent // 1000 if pick % 2 else None
            sales.append(sell(journal, amount, fee, order_id=f"order-{n}", on=on))
            sold, fees = sold + amount, fees + (fee or 0)
            continue
        if kind == "refund":
            if sales and not (sale := sales[pick % len(sales)]).refunded:
                journal.record_refund(sale, on)
                sold, fees = sold - sale.entry.allocated, fees - sum(
                    p.amount for p in sale.entry.postings if p.account == PAYMENT_FEES)
            continue
        payees = sorted(filter(None, map(payee_of, journal.credits)))
        if not payees:
            continue
        recipient, farm_code = payees[pick % len(payees)]
        owed = journal.owed(recipient, farm_code)
        payout = max(1, owed * percent // 100)
        if payout > owed:
            with pytest.raises(OverpaidError):
                pay(journal, recipient, farm_code, payout, on, f"bank-{n}")
        else:
            pay(journal, recipient, farm_code, payout, on, f"bank-{n}")
            paid += payout

    assert audit(journal) == []
    payees = list(filter(None, map(payee_of, journal.credits)))
    for payee in payees:
        assert journal.owed(*payee) == journal.allocated(*payee) - journal.paid_out(*payee)
    assert sum(journal.allocated(*payee) for payee in payees) == sold
    assert sum(journal.paid_out(*payee) for payee in payees) == paid
    assert journal.debits.get(CASH, 0) - journal.credits.get(CASH, 0) == sold - fees - paid
    assert replayed(journal) == journal


# --- Stored and loaded ---------------------------------------------------------------------


class MarketStore(Application):
    """An in-memory event store that knows the market's value objects."""

    def register_transcodings(self, transcoder) -> None:
        super().register_transcodings(transcoder)
        for transcoding in MARKET_TRANSCODINGS:
            transcoder.register(transcoding)

    def exists(self, aggregate_id: UUID) -> bool:
        return bool(self.recorder.select_events(aggregate_id, limit=1))


def in_memory_store() -> MarketStore:
    return MarketStore(env={"PERSISTENCE_MODULE": "eventsourcing.popo",
                            "IS_SNAPSHOTTING_ENABLED": "y"})


def test_market_aggregates_load_from_stored_events_and_snapshots_unchanged():
    store = in_memory_store()
    rule = rule_of((SHARES, JAN_2024), ({FARMERS: Decimal("70.5"), AIDER: Decimal("29.5")},
                                       JULY_2024))
    farms = [farm("F-1", "2.75", weight="1.5"), farm("F-2", active=False)]
    journal = ProceedsLedger.open("USD")
    sale = sell(journal, 10000, fee=300, project=REGISTRY)
    payout = pay(journal, FARMERS, "F-1", 1000)
    journal.record_refund(sale, date(2024, 6, 2))
    store.save(rule, *farms, journal, sale, payout)

    for aggregate in (rule, *farms, journal, sale, payout):
        assert store.repository.get(aggregate.id) == aggregate
        store.take_snapshot(aggregate.id)
        assert store.repository.get(aggregate.id) == aggregate


def test_a_sale_cannot_be_booked_twice():
    store = in_memory_store()
    journal = ProceedsLedger.open("USD")
    store.save(journal, sell(journal, 10000, order_id="order-7"))

    # A retry asks the store and is refused by name...
    retry = store.repository.get(journal.id)
    with pytest.raises(SaleAlreadyRecordedError):
        sell(retry, 10000, order_id="order-7", exists=store.exists)
    # ...and one that asked before the first was saved is refused by the store, as a whole.
    racing = store.repository.get(journal.id)
    with pytest.raises(IntegrityError):
        store.save(racing, sell(racing, 10000, order_id="order-7"))
    assert store.repository.get(journal.id).owed(AIDER) == 2500


def test_a_sale_cannot_be_refunded_twice_even_by_two_refunds_at_once():
    store = in_memory_store()
    journal = ProceedsLedger.open("USD")
    sale = sell(journal, 10000)
    store.save(journal, sale)
    def loaded() -> tuple[ProceedsLedger, SaleProceeds]:
        return store.repository.get(journal.id), store.repository.get(sale.id)

    first, second = loaded(), loaded()

    first[0].record_refund(first[1], date(2024, 6, 1))
    store.save(*first)
    second[0].record_refund(second[1], date(2024, 6, 1))

    with pytest.raises(IntegrityError):
        store.save(*second)
    with pytest.raises(SaleAlreadyRecordedError):
        store.repository.get(journal.id).record_refund(store.repository.get(sale.id),
                                                       date(2024, 6, 2))
    assert store.repository.get(journal.id).owed(AIDER) == 0


def test_a_payout_reference_cannot_be_used_twice_for_a_payee():
    store = in_memory_store()
    journal = journal_with_sale(10000)
    store.save(journal, pay(journal, FARMERS, "F-1", 100, reference="BCP-9"))

    retry = store.repository.get(journal.id)
    with pytest.raises(PayoutAlreadyRecordedError):
        pay(retry, FARMERS, "F-1", 100, reference="BCP-9", exists=store.exists)
    racing = store.repository.get(journal.id)
    with pytest.raises(IntegrityError):
        store.save(racing, pay(racing, FARMERS, "F-1", 100, reference="BCP-9"))
    assert store.repository.get(journal.id).paid_out(FARMERS, "F-1") == 100


def test_the_payees_are_everyone_a_sale_allocated_to_by_recipient_then_farm():
    journal = journal_with_sale()
    pay(journal, AIDER, None, 100)
    assert journal.payees() == [(AIDER, None), (FEE, None), (FARMERS, "F-1"),
                                (FARMERS, "F-2"), (FARMERS, "F-3")]
    assert ProceedsLedger.open("USD").payees() == []
