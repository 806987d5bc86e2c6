"""The auditors' area: paging and filtering the event log, balances at a past moment, verify,
exports, who may see it, bad input, and that using it changes nothing."""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import re
from datetime import timedelta

import pytest

from ledger.audit.keys import SigningKey, generate_key, signing_key_file
from ledger.audit.log import AuditLog
from ledger.read.replay import stored_notifications
from ledger.domain.retirements import RetirementClaim
from market.demo import SALES
from tests.web.conftest import post_form

PAGES = ["/auditor/", "/auditor/events", "/auditor/events?topic=Retired&limit=5",
         "/auditor/balances", "/auditor/balances?position=50", "/auditor/verify",
         "/auditor/export.jsonl", "/auditor/export.csv"]
ANDES = "org-andes-coffee-roasters"
_POSITION = re.compile(r'<tr id="position-(\d+)">')
_BALANCE = re.compile(r'<tr><td>([^<]*)</td><td>([^<]*)</td><td class="num">(\d+)</td>\s*'
                      r'<td>([^<]*)</td><td class="num">([\d,]+)</td></tr>')


def shown_positions(response) -> list[int]:
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return [int(p) for p in _POSITION.findall(response.get_data(as_text=True))]


def link(response, rel: str) -> str | None:
    match = re.search(rf'<a href="([^"]+)" rel="{rel}">', response.get_data(as_text=True))
    return html.unescape(match.group(1)) if match else None


def walk(client, start: str, rel: str) -> list[int]:
    """Every position shown while following ``rel`` links from ``start`` (in the order read)."""
    seen, url, pages = [], start, 0
    while url is not None:
        response = client.get(url)
        positions = shown_positions(response)
        seen += positions if rel == "next" else positions[::-1]
        url, pages = link(response, rel), pages + 1
        assert pages < 200, "the pager never ends"
    return seen


def all_records(market):
    return list(stored_notifications(market))


def timestamps(market) -> dict[int, object]:
    return {n.id: market.mapper.to_domain_event(n).timestamp for n in all_records(market)}


def balances(response) -> list[tuple[str, str, int, str, int]]:
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return [(a, p, int(v), s, int(q.replace(",", "")))
            for a, p, v, s, q in _BALANCE.findall(response.get_data(as_text=True))]


def held_by(rows, account: str) -> int:
    return sum(q for a, _, _, s, q in rows if a == account and s == "held")


def retire(market, beneficiary: str, quantity: int = 1) -> dict:
    return market.ledger.retire(
        ANDES, RetirementClaim(beneficiary=beneficiary, reason="audit test"), quantity=quantity)


@pytest.fixture
def logged(market):
    """The demo store logged under a signed tree head, as the worker would have done."""
    path = signing_key_file()
    generate_key(path)
    return AuditLog(market).follow(SigningKey.load(path))


def tamper(market, position: int, state: bytes) -> None:
    """What an intruder with write access to the SQLite file could do."""
    with market.factory.datastore.transaction(commit=True) as cursor:
        cursor.execute("UPDATE stored_events SET state = ? WHERE rowid = ?", (state, position))


# --- who may look ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", PAGES)
def test_buyers_and_operators_may_not_see_the_audit_area(buyer, operator, path):
    assert buyer.get(path).status_code == 403
    assert operator.get(path).status_code == 403


@pytest.mark.parametrize("path", PAGES)
def test_anonymous_visitors_are_sent_to_log_in(anonymous, path):
    response = anonymous.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


def test_only_auditors_may_run_verify(operator):
    assert post_form(operator, "/auditor/verify", {}).status_code == 403


# --- the overview ------------------------------------------------------------------------------


def test_the_overview_shows_the_latest_signed_tree_head_and_the_key(auditor, logged):
    page = auditor.get("/auditor/").get_data(as_text=True)
    assert logged.root_hash.hex() in page and logged.signature.hex() in page
    assert f"{logged.tree_size:,}</strong> under a signed tree head" in page
    assert logged.key_id in page and "/audit/public-key.pem" in page


def test_the_overview_says_when_nothing_is_signed_yet(auditor, market):
    page = auditor.get("/auditor/").get_data(as_text=True)
    assert "No signed tree head yet" in page
    assert f"{market.recorder.max_notification_id():,}</strong> not yet logged" in page


# --- the event browser ---------------------------------------------------------------------------


@pytest.mark.parametrize("limit", [1, 7, 50, 500])
def test_paging_forwards_shows_every_event_exactly_once_in_order(auditor, market, limit):
    expected = [n.id for n in all_records(market)]
    assert walk(auditor, f"/auditor/events?limit={limit}", "next") == expected


@pytest.mark.parametrize("limit", [1, 7, 50])
def test_paging_backwards_from_the_end_shows_every_event_exactly_once(auditor, market, limit):
    expected = [n.id for n in all_records(market)]
    newest = expected[-1]
    seen = walk(auditor, f"/auditor/events?limit={limit}&before={newest + 1}", "prev")
    assert seen == expected[::-1]


def test_older_from_a_page_lands_on_the_page_before_it(auditor):
    second = auditor.get("/auditor/events?limit=10&after=10")
    assert shown_positions(second) == list(range(11, 21))
    assert shown_positions(auditor.get(link(second, "prev"))) == list(range(1, 11))
    assert link(auditor.get("/auditor/events?limit=10"), "prev") is None


@pytest.mark.parametrize("scan_limit", [3, 20, 10_000])
def test_a_filter_pages_through_every_match_exactly_once_however_little_each_page_reads(
        app, auditor, market, scan_limit):
    app.config["AUDITOR_SCAN_LIMIT"] = scan_limit
    expected = [n.id for n in all_records(market) if "Account." in n.topic]
    assert expected, "the demo opens accounts"
    assert walk(auditor, "/auditor/events?topic=Account.&limit=4", "next") == expected
    newest = market.recorder.max_notification_id()
    backwards = walk(auditor, f"/auditor/events?topic=Account.&limit=4&before={newest + 1}", "prev")
    assert backwards == expected[::-1]


def test_a_page_cut_short_by_the_scan_limit_says_where_it_stopped(app, auditor):
    app.config["AUDITOR_SCAN_LIMIT"] = 5
    response = auditor.get("/auditor/events?topic=Retirement.Recorded")
    assert shown_positions(response) == []
    assert "Stopped reading at position 5" in response.get_data(as_text=True)
    assert link(response, "next").endswith("after=5") or "after=5" in link(response, "next")


@pytest.mark.parametrize("topic", ["Retired", "Account.", "market.domain.proceeds:Farm.Registered"])
def test_the_topic_filter_shows_only_matching_topics(auditor, market, topic):
    expected = [n.id for n in all_records(market) if topic in n.topic]
    assert expected
    assert shown_positions(auditor.get(f"/auditor/events?topic={topic}&limit=500")) == expected


def test_the_originator_filter_shows_one_aggregates_events(auditor, market):
    account_opened = next(n for n in all_records(market) if n.topic.endswith("Account.Opened"))
    originator = account_opened.originator_id
    expected = [n.id for n in all_records(market) if n.originator_id == originator]
    assert len(expected) > 1
    response = auditor.get(f"/auditor/events?originator={str(originator).upper()}")
    assert shown_positions(response) == expected


def test_the_position_range_filter_keeps_to_its_range(auditor):
    assert shown_positions(auditor.get("/auditor/events?first=20&last=29")) == list(range(20, 30))
    assert shown_positions(auditor.get("/auditor/events?first=20&last=29&limit=3&after=25")) == \
        [26, 27, 28]


def test_the_time_filter_keeps_to_its_interval(auditor, market):
    times = timestamps(market)
    since, until = times[30], times[60]
    expected = [p for p, t in times.items() if since <= t <= until]
    response = auditor.get("/auditor/events", query_string={
        "since": since.isoformat(), "until": until.isoformat(), "limit": 500})
    assert shown_positions(response) == expected
    later = auditor.get("/auditor/events", query_string={
        "since": (times[max(times)] + timedelta(seconds=1)).isoformat()})
    assert shown_positions(later) == []


def test_an_events_state_is_shown_as_json_and_escaped(auditor, market):
    retire(market, "<script>alert('x')</script> Roasters")
    page = auditor.get("/auditor/events?topic=Retirement.Recorded").get_data(as_text=True)
    assert "&lt;script&gt;alert(" in page
    assert "<script>alert" not in page
    assert "&#34;beneficiary&#34;: " in page or "&quot;beneficiary&quot;: " in page


def test_an_event_that_no_longer_decodes_is_still_shown(auditor, market):
    tamper(market, 10, b"{not json")
    response = auditor.get("/auditor/events?after=9&limit=1")
    assert shown_positions(response) == [10]
    page = response.get_data(as_text=True)
    assert "cannot decode" in page and "{not json" in page


# --- balances at a moment -----------------------------------------------------------------------


def test_balances_before_the_demos_retirement_show_the_tonnes_still_held(auditor, market):
    retirement = min(n.id for n in all_records(market)
                     if n.topic.endswith(("Account.Retired", "Retirement.Recorded")))
    before = auditor.get(f"/auditor/balances?position={retirement - 1}")
    after = auditor.get("/auditor/balances?run=1")

    assert held_by(balances(before), ANDES) == 500  # sold to Andes, none retired yet
    assert held_by(balances(after), ANDES) == 380  # 120 t retired by the demo
    assert "<strong>0 t</strong> retired" in before.get_data(as_text=True)
    # ...and the market demo's sales retired at once (from escrow, never held by Andes)
    retired_at_once = sum(tonnes for *_, tonnes, _, beneficiary in SALES if beneficiary)
    assert f"<strong>{120 + retired_at_once:,} t</strong> retired" in after.get_data(as_text=True)
    assert "No rule is broken up to here" in after.get_data(as_text=True)


def test_balances_at_a_time_match_balances_at_that_position(auditor, market):
    times = timestamps(market)
    at_position = balances(auditor.get("/auditor/balances?position=40"))
    at_time = balances(auditor.get("/auditor/balances", query_string={
        "at": times[40].isoformat()}))
    assert at_time == at_position and at_position


def test_a_position_between_the_two_halves_of_a_move_is_explained_not_hidden(auditor, market):
    sent = next(n.id for n in all_records(market) if n.topic.endswith("Account.Sent"))
    received = next(n.id for n in all_records(market) if n.topic.endswith("Account.Received"))
    page = auditor.get(f"/auditor/balances?position={min(sent, received)}").get_data(as_text=True)
    assert "never matched" in page and "pick a later position" in page


def test_a_long_replay_stops_at_the_cap_and_says_so(app, auditor):
    app.config["AUDITOR_REPLAY_MAX_EVENTS"] = 20
    page = auditor.get("/auditor/balances?run=1").get_data(as_text=True)
    assert "After 20 events (position 20)" in page
    assert "replays at most 20 events" in page


def test_the_balances_form_alone_replays_nothing(auditor):
    page = auditor.get("/auditor/balances").get_data(as_text=True)
    assert "<h2>After" not in page


# --- verify ------------------------------------------------------------------------------------


def test_verify_reports_ok_on_the_demo_against_the_latest_head(auditor, market, logged):
    response = post_form(auditor, "/auditor/verify", {})
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert '<h2 class="audit-ok">OK</h2>' in page
    stored = market.recorder.max_notification_id()
    assert f"{stored:,} events read, {stored:,} of them logged" in page
    assert logged.root_hash.hex() in page


def test_verify_names_the_position_of_a_stored_event_altered_after_logging(auditor, market,
                                                                         logged):
    position = next(n.id for n in all_records(market) if n.topic.endswith("Account.Received"))
    state = bytes(market.recorder.select_notifications(start=position, limit=1)[0].state)
    tamper(market, position, state.replace(b'"transfer_id"', b'"transfer_id" ', 1))

    page = post_form(auditor, "/auditor/verify", {}).get_data(as_text=True)

    assert '<h2 class="audit-failed">' in page
    assert re.search(rf">{position}</a></td>\s*<td><code>event_unchanged</code>", page)
    assert "tree_head_root" in page


def test_verify_without_a_signed_head_checks_the_rules_and_says_what_it_could_not(auditor):
    page = post_form(auditor, "/auditor/verify", {}).get_data(as_text=True)
    assert '<h2 class="audit-ok">OK</h2>' in page
    assert "are not under a signed head yet" in page


def test_verify_needs_the_forms_csrf_token(auditor):
    assert auditor.post("/auditor/verify").status_code == 400


def test_verify_refuses_a_store_larger_than_its_cap(app, auditor):
    app.config["AUDITOR_VERIFY_MAX_EVENTS"] = 10
    page = post_form(auditor, "/auditor/verify", {}).get_data(as_text=True)
    assert "verifies at most 10" in page and "kapok audit verify" in page
    assert "audit-report" not in page


# --- exports -----------------------------------------------------------------------------------


def test_the_jsonl_export_streams_every_event_once(auditor, market):
    response = auditor.get("/auditor/export.jsonl")
    assert response.is_streamed
    assert "attachment" in response.headers["Content-Disposition"]
    rows = [json.loads(line) for line in response.get_data(as_text=True).splitlines()]
    assert [row["position"] for row in rows] == [n.id for n in all_records(market)]


def test_the_jsonl_export_ends_with_the_checkpoint_over_its_leaves(auditor, anonymous, logged):
    rows = [json.loads(line) for line in
            auditor.get("/auditor/export.jsonl").get_data(as_text=True).splitlines()]

    events = [row for row in rows if "position" in row]
    assert [row["leaf_index"] for row in events] == list(range(logged.tree_size))
    assert all(base64.b64decode(row["leaf_input"]) for row in events)
    assert rows[len(events):] == [
        {"checkpoint": anonymous.get("/audit/checkpoint").get_data(as_text=True)}]


def test_the_csv_export_neutralises_formulas_in_every_cell(auditor, market):
    retire(market, '=HYPERLINK("http://evil.example","click me")')
    response = auditor.get("/auditor/export.csv")
    assert response.is_streamed and response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert len(rows) == market.recorder.max_notification_id()
    assert all(not cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row.values())
    retirement = next(row for row in rows if row["event"] == "Retirement.Recorded"
                      and "HYPERLINK" in row["fields"])
    assert json.loads(retirement["fields"])["claim"]["beneficiary"].startswith("=HYPERLINK")


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_an_event_that_no_longer_decodes_is_exported_not_the_end_of_the_file(auditor, market,
                                                                             fmt):
    tamper(market, 10, b"{not json")
    text = auditor.get(f"/auditor/export.{fmt}").get_data(as_text=True)
    rows = ([json.loads(line) for line in text.splitlines()] if fmt == "jsonl"
            else list(csv.DictReader(io.StringIO(text))))
    assert len(rows) == market.recorder.max_notification_id()
    altered = rows[9]
    fields = altered["fields"] if fmt == "jsonl" else json.loads(altered["fields"])
    assert (int(altered["position"]), fields) == (10, {"undecodable_state": "{not json"})


def test_an_unknown_export_format_is_not_found(auditor):
    assert auditor.get("/auditor/export.xlsx").status_code == 404


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize("query", [
    "after=-1", "after=abc", "before=0", f"after={2**63}", "after=1e3", "limit=0",
    "limit=100000", "first=-5", "last=x", "since=yesterday", "until=2026-13-01T00:00",
    "originator=not-a-uuid", "topic=" + "x" * 201,
])
def test_bad_event_browser_parameters_give_a_400_page(auditor, query):
    response = auditor.get(f"/auditor/events?{query}")
    assert response.status_code == 400
    assert response.mimetype == "text/html"
    assert '<small class="error">' in response.get_data(as_text=True)


@pytest.mark.parametrize("query", [
    "position=-1", "position=abc", f"position={10**30}", "at=tomorrow", "at=2026-02-30T10:00",
    "at=9999-12-31T23:59:59-05:00", "at=0001-01-01T00:00+05:00",
])
def test_bad_balance_parameters_give_a_400_page(auditor, query):
    response = auditor.get(f"/auditor/balances?{query}")
    assert response.status_code == 400
    assert '<small class="error">' in response.get_data(as_text=True)


def test_a_position_past_the_end_is_an_empty_page_not_an_error(auditor, market):
    response = auditor.get(f"/auditor/events?after={2**63 - 1}")
    assert shown_positions(response) == []
    assert link(response, "next") is None
    newest = market.recorder.max_notification_id()
    assert shown_positions(auditor.get(link(response, "prev")))[-1] == newest
    assert balances(auditor.get(f"/auditor/balances?position={2**63 - 1}"))


# --- read-only ---------------------------------------------------------------------------------


def test_using_every_page_changes_nothing_in_the_store(auditor, market, logged):
    log = AuditLog(market)
    before = (market.recorder.max_notification_id(), log.heads())
    for path in PAGES + ["/auditor/events?before=50&limit=5", "/auditor/balances?run=1"]:
        assert auditor.get(path).status_code == 200, path
    assert post_form(auditor, "/auditor/verify", {}).status_code == 200
    assert (market.recorder.max_notification_id(), log.heads()) == before


# --- checkpoints, for anyone's tools ----------------------------------------------------------


def test_the_latest_checkpoint_is_public_text_signed_by_the_published_note_key(anonymous, logged):
    from ledger.audit.checkpoint import Checkpoint, NoteVerifier

    response = anonymous.get("/audit/checkpoint")
    key = anonymous.get("/audit/verifier-key")

    assert response.status_code == 200 and key.status_code == 200
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    verifier = NoteVerifier.parse(key.get_data(as_text=True))
    checkpoint = Checkpoint.parse(response.get_data(), verifier, origin=verifier.name)
    assert (checkpoint.tree_size, checkpoint.root_hash) == (logged.tree_size, logged.root_hash)
    assert anonymous.get("/audit/tree-head").get_json()["checkpoint"] == checkpoint.text


def test_no_checkpoint_before_the_log_is_signed(anonymous, market):
    response = anonymous.get("/audit/checkpoint")
    assert response.status_code == 404 and "no checkpoint" in response.get_data(as_text=True)
