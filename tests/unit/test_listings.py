"""Rules of listings on their own, without a database: terms, volume tiers, status changes,
the reserved and sold counters, replay, storage, and what a buyer is shown."""

from __future__ import annotations

import functools
from datetime import date
from decimal import Decimal

import pytest
from eventsourcing.application import Application
from hypothesis import given
from hypothesis import strategies as st

from ledger.domain.projects import Project, Vintage
from market.adapters.transcodings import LISTING_TRANSCODINGS
from market.domain.errors import MarketError
from market.domain.listings import (
    ACTIVE,
    CLOSED,
    PAUSED,
    InvalidListingError,
    Listing,
    ListingError,
    ListingNotActiveError,
    ListingProjectMismatchError,
    ListingStatusError,
    NotEnoughAvailableError,
    PriceTier,
    listing_id_for,
    listing_summary,
    validate_listing,
)
from testbed.builders import project_details

TIERS = (PriceTier(100, Decimal("11.00")), PriceTier(500, Decimal("9.50")))


def listing(**changes) -> Listing:
    terms = dict(project_registry_id="VCS-1067", vintage_year=2021,
                 inventory_account="ecosphere-inventory", price_per_tonne=Decimal("12.50"),
                 currency="USD", minimum_quantity=1, tiers=TIERS, on_offer=1000)
    terms.update(changes)
    return Listing.create(**terms)


def replayed(aggregate):
    """A fresh aggregate rebuilt from the events the given one collected."""
    return functools.reduce(lambda state, event: event.mutate(state), aggregate.collect_events(),
                            None)


def state(item: Listing) -> tuple:
    return (item.id, item.version, item.key, item.project_registry_id, item.vintage_year,
            item.inventory_account, item.price_per_tonne, item.currency, item.minimum_quantity,
            item.tiers, item.status, item.on_offer, item.reserved, item.sold)


# --- Terms ---------------------------------------------------------------------------------


def test_a_new_listing_is_active_with_everything_on_offer_available():
    new = listing(project_registry_id="vcs-1067")

    assert (new.status, new.reserved, new.sold, new.available) == (ACTIVE, 0, 0, 1000)
    assert new.project_registry_id == "VCS-1067"
    assert new.tiers == TIERS
    assert validate_listing(new) == []


def test_a_listing_with_a_key_always_gets_the_same_id_and_one_without_a_random_one():
    assert listing(key="offer-2024-06").id == listing(key="offer-2024-06").id == listing_id_for(
        "offer-2024-06")
    assert listing().id != listing().id


@pytest.mark.parametrize(
    "changes",
    [
        {"price_per_tonne": Decimal(0)},
        {"price_per_tonne": Decimal("-1")},
        {"price_per_tonne": Decimal("NaN")},
        {"price_per_tonne": 12.5},
        {"price_per_tonne": Decimal("12.1234567")},
        {"currency": "GBP"},
        {"minimum_quantity": 0},
        {"minimum_quantity": 2.0},
        {"on_offer": -1},
        {"vintage_year": 1989},
        {"project_registry_id": "VCS 1067"},
        {"inventory_account": "no spaces"},
        {"tiers": [PriceTier(1, Decimal("11"))]},
        {"minimum_quantity": 100, "tiers": [PriceTier(100, Decimal("11"))]},
        {"tiers": [PriceTier(500, Decimal("11")), PriceTier(100, Decimal("10"))]},
        {"tiers": [PriceTier(100, Decimal("11")), PriceTier(100, Decimal("10"))]},
        {"tiers": [PriceTier(100, Decimal("11")), PriceTier(500, Decimal("11.50"))]},
        {"tiers": [PriceTier(100, Decimal("13"))]},
        {"tiers": [(100, Decimal("11"))]},
    ],
)
def test_unacceptable_terms_are_refused(changes):
    with pytest.raises(InvalidListingError):
        listing(**changes)


def test_equal_tier_prices_are_allowed_since_prices_only_may_not_rise():
    assert listing(tiers=[PriceTier(10, Decimal("12.50"))]).unit_price(10) == Decimal("12.50")


@pytest.mark.parametrize(
    "quantity, price",
    [(1, "12.50"), (99, "12.50"), (100, "11.00"), (499, "11.00"), (500, "9.50"), (10**6, "9.50")],
)
def test_the_unit_price_is_the_tier_reached_by_the_quantity(quantity, price):
    assert listing().unit_price(quantity) == Decimal(price)


@pytest.mark.parametrize("quantity", [0, -5, 1.5, True])
def test_a_unit_price_is_only_for_a_whole_number_of_tonnes(quantity):
    with pytest.raises(InvalidListingError):
        listing().unit_price(quantity)


tier_steps = st.lists(st.tuples(st.integers(1, 200), st.integers(0, 300)), max_size=6)


@given(st.integers(1, 50), st.integers(100, 10_000), tier_steps)
def test_tiers_apply_from_their_thresholds_and_not_one_tonne_before(minimum, cents, steps):
    threshold, price, tiers = minimum, cents, []
    for gap, discount in steps:
        threshold, price = threshold + gap, max(1, price - discount)
        tiers.append(PriceTier(threshold, Decimal(price).scaleb(-2)))
    offered = listing(minimum_quantity=minimum, tiers=tiers,
                      price_per_tonne=Decimal(cents).scaleb(-2))

    previous = offered.price_per_tonne
    for tier in tiers:
        assert offered.unit_price(tier.min_tonnes) == tier.price_per_tonne
        assert offered.unit_price(tier.min_tonnes - 1) == previous
        previous = tier.price_per_tonne


# --- Status --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "commands, status",
    [
        ([], ACTIVE),
        (["pause"], PAUSED),
        (["pause", "resume"], ACTIVE),
        (["close"], CLOSED),
        (["pause", "close"], CLOSED),
    ],
)
def test_a_listing_pauses_resumes_and_closes(commands, status):
    offered = listing()
    for command in commands:
        getattr(offered, command)()

    assert offered.status == status


@pytest.mark.parametrize(
    "commands, refused",
    [
        ([], "resume"),
        (["pause"], "pause"),
        (["close"], "resume"),
        (["close"], "pause"),
        (["close"], "close"),
    ],
)
def test_an_illegal_status_change_is_refused_and_closed_is_final(commands, refused):
    offered = listing()
    for command in commands:
        getattr(offered, command)()

    with pytest.raises(ListingStatusError) as raised:
        getattr(offered, refused)()
    assert str(offered.id) in str(raised.value)


# --- Counters ------------------------------------------------------------------------------


def test_reserved_tonnes_are_not_available_and_sold_ones_stay_counted():
    offered = listing(on_offer=100)

    offered.reserve(30, reference="order-1")
    offered.reserve(20, reference="order-2")
    offered.release(20, reference="order-2")
    offered.sell(30, reference="order-1")

    assert (offered.on_offer, offered.reserved, offered.sold, offered.available) == (100, 0, 30, 70)


def test_cannot_reserve_more_than_is_available():
    offered = listing(on_offer=10)
    offered.reserve(8)

    with pytest.raises(NotEnoughAvailableError):
        offered.reserve(3)


@pytest.mark.parametrize("command", ["pause", "close"])
def test_cannot_reserve_from_a_paused_or_closed_listing(command):
    offered = listing()
    getattr(offered, command)()

    with pytest.raises(ListingNotActiveError):
        offered.reserve(1)


def test_tonnes_reserved_before_closing_can_still_be_sold_or_released():
    offered = listing(on_offer=10)
    offered.reserve(6)
    offered.close("vintage sold out elsewhere")

    offered.sell(4)
    offered.release(2)

    assert (offered.reserved, offered.sold) == (0, 4)


@pytest.mark.parametrize("command", ["release", "sell"])
def test_cannot_release_or_sell_more_than_is_reserved(command):
    offered = listing()
    offered.reserve(5)

    with pytest.raises(NotEnoughAvailableError):
        getattr(offered, command)(6)


@pytest.mark.parametrize("command", ["reserve", "release", "sell"])
@pytest.mark.parametrize("quantity", [0, -1, 2.0, True])
def test_counters_move_only_by_whole_positive_tonnes(command, quantity):
    with pytest.raises(InvalidListingError):
        getattr(listing(), command)(quantity)


@pytest.mark.parametrize("command", ["reserve", "release", "sell"])
def test_a_reference_recorded_with_a_counter_is_short_text(command):
    offered = listing()
    offered.reserve(5)

    with pytest.raises(InvalidListingError):
        getattr(offered, command)(1, reference=42)
    with pytest.raises(InvalidListingError):
        getattr(offered, command)(1, reference="x" * 201)


def test_the_operator_changes_the_offer_but_never_below_reserved_and_sold():
    offered = listing(on_offer=100)
    offered.reserve(30)
    offered.sell(10)

    offered.set_on_offer(40)
    assert (offered.reserved, offered.sold, offered.available) == (20, 10, 10)
    with pytest.raises(NotEnoughAvailableError):
        offered.set_on_offer(29)


def test_the_offer_of_a_closed_listing_does_not_change():
    offered = listing()
    offered.close()

    with pytest.raises(ListingStatusError):
        offered.set_on_offer(5)


def test_every_listing_error_is_a_market_error():
    assert issubclass(ListingError, MarketError)


commands = st.lists(
    st.tuples(st.sampled_from(["reserve", "release", "sell", "set_on_offer", "pause", "resume",
                               "close"]), st.integers(-2, 60)),
    max_size=40,
)


@given(st.integers(0, 100), commands)
def test_counters_never_go_negative_and_available_never_exceeds_the_offer(on_offer, steps):
    offered = listing(on_offer=on_offer)
    for command, quantity in steps:
        try:
            if command in ("pause", "resume", "close"):
                getattr(offered, command)()
            else:
                getattr(offered, command)(quantity)
        except ListingError:
            pass  # refused commands change nothing
        assert min(offered.reserved, offered.sold, offered.available) >= 0
        assert offered.available <= offered.on_offer
        assert validate_listing(offered) == []

    assert state(replayed(offered)) == state(offered)


def test_the_auditor_sees_every_broken_counter_at_once():
    offered = listing(on_offer=10)
    offered.reserved, offered.sold = -1, 20  # as if events had been tampered with

    assert len(validate_listing(offered)) == 2


# --- Replay and storage --------------------------------------------------------------------


def test_a_listing_replays_from_its_events_to_the_same_state():
    offered = listing(key="replay", on_offer=50)
    offered.reserve(20, "order-1")
    offered.pause()
    offered.sell(5, "order-1")
    offered.set_on_offer(60)
    offered.resume()

    assert state(replayed(offered)) == state(offered)


class ListingStore(Application):
    def register_transcodings(self, transcoder) -> None:
        super().register_transcodings(transcoder)
        for transcoding in LISTING_TRANSCODINGS:
            transcoder.register(transcoding)


def test_a_listing_with_tiers_is_stored_and_loaded_back_unchanged():
    store = ListingStore(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    offered = listing(key="stored")
    offered.reserve(7, "order-9")
    store.save(offered)

    assert state(store.repository.get(offered.id)) == state(offered)


# --- What a buyer is shown -----------------------------------------------------------------


def registered_project(registry_id: str = "VCS-1067", labels=("CCB",)) -> Project:
    project = Project(project_details(registry_id, buffer_percent="18", labels=labels))
    project.add_vintage(Vintage(2021, ("CCB", "CORSIA")), today=date(2024, 6, 1))
    return project


def test_a_summary_shows_the_listing_with_its_projects_buffer_labels_and_vintage():
    offered = listing()
    offered.reserve(100)

    summary = listing_summary(offered, registered_project())

    assert summary["project_name"] == "Test project VCS-1067"
    assert summary["buffer_percent"] == Decimal("18")
    assert summary["labels"] == ["CCB", "CORSIA"]
    assert (summary["vintage_year"], summary["corresponding_adjustment"]) == (2021, "Not Required")
    assert (summary["price_per_tonne"], summary["currency"]) == (Decimal("12.50"), "USD")
    assert summary["tiers"][0] == {"min_tonnes": 100, "price_per_tonne": Decimal("11.00")}
    assert (summary["available"], summary["reserved"]) == (900, 100)


def test_a_listing_is_not_shown_with_another_project_or_a_missing_vintage():
    with pytest.raises(ListingProjectMismatchError):
        listing_summary(listing(), registered_project("VCS-9999"))
    with pytest.raises(ListingProjectMismatchError):
        listing_summary(listing(vintage_year=2019), registered_project())
