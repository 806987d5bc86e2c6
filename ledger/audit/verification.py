"""``verify``: one streaming pass over the store that re-derives everything an auditor relies on.

It recomputes every event's leaf hash and compares it with the logged one (naming each event
altered, deleted, inserted or moved), rebuilds the tree's root at the size of every signed
head and checks each head's signature, and replays the events into the ledger's invariants.
Memory stays bounded: the tree is streamed through a frontier, the log through pages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from ledger.audit.log import AuditLog, notification_leaf
from ledger.audit.merkle import Frontier
from ledger.audit.verifier import verify_signature
from ledger.audit.invariants import VALIDATIONS
from ledger.read.replay import LedgerState, Violation, stored_notifications


@dataclass
class VerifyReport:
    events: int = 0
    logged: int = 0
    heads_checked: int = 0
    latest_head_size: int = 0
    problems: list[Violation] = field(default_factory=list)
    unlogged: tuple[int | None, int | None, int] = (None, None, 0)  # first, last, count

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict:
        first, last, count = self.unlogged
        return {
            "ok": self.ok, "events": self.events, "logged": self.logged,
            "heads_checked": self.heads_checked, "latest_head_size": self.latest_head_size,
            "not_yet_logged": {"first": first, "last": last, "count": count},
            "problems": [
                {"position": p.position, "rule": p.rule, "message": p.message}
                for p in self.problems
            ],
        }


def verify(app, public_pem: bytes, progress: Callable[[int], None] | None = None) -> VerifyReport:
    """Checks the store against the audit log, the signed heads and the ledger's rules."""
    log = AuditLog(app)
    report = VerifyReport()
    problems = report.problems
    heads = iter(log.heads())
    next_head = next(heads, None)
    logged = log.logged_leaves()
    pending_logged = next(logged, None)
    frontier = Frontier()
    state = LedgerState()

    def check_heads_up_to(size: int) -> None:
        nonlocal next_head
        while next_head is not None and next_head.tree_size == size:
            report.heads_checked += 1
            report.latest_head_size = size
            if not verify_signature(public_pem, next_head.message, next_head.signature):
                problems.append(Violation("tree_head_signed", f"tree head of size {size} has "
                                          f"a bad signature (key {next_head.key_id})"))
            if frontier.root() != next_head.root_hash:
                problems.append(Violation("tree_head_root", f"the events now stored do not "
                                          f"give the root signed for tree size {size}",
                                          next_head.last_position))
            next_head = next(heads, None)

    check_heads_up_to(0)
    for notification in stored_notifications(app):
        report.events += 1
        position = notification.id
        digest = notification_leaf(notification)
        # Logged leaves whose positions are no longer in the store were deleted.
        while pending_logged is not None and pending_logged[1] < position:
            problems.append(Violation("event_kept", "a logged event is missing from the "
                                      "store (deleted)", pending_logged[1]))
            pending_logged = next(logged, None)
        if pending_logged is not None and pending_logged[1] == position:
            report.logged += 1
            if pending_logged[2] != digest:
                problems.append(Violation("event_unchanged", "the stored event differs from "
                                          "the one logged (altered or moved)", position))
            pending_logged = next(logged, None)
        elif pending_logged is None:
            # Past the end of the log: written after the follower's last page. The ledger's
            # rules below still check these events.
            report.unlogged = (report.unlogged[0] or position, position, report.unlogged[2] + 1)
        else:
            problems.append(Violation("event_logged", "an event was inserted into the "
                                      "middle of the log", position))
        frontier.append(digest)
        check_heads_up_to(frontier.size)
        try:
            state.apply(app.mapper.to_domain_event(notification), position)
        except Exception as error:  # an altered event may not even decode; report, go on
            problems.append(Violation("event_decodes", f"cannot decode: {error}", position))
        if progress:
            progress(position)
    while pending_logged is not None:
        problems.append(Violation("event_kept", "a logged event is missing from the store "
                                  "(deleted)", pending_logged[1]))
        pending_logged = next(logged, None)
    if next_head is not None:
        problems.append(Violation("tree_head_root", f"a head signs {next_head.tree_size} "
                                  f"events but only {frontier.size} are stored (deleted)"))
    problems += state.violations + state.unfinished()
    for validation in VALIDATIONS:
        problems += validation(state)
    return report

