"""``verify``: one streaming pass over the store that re-derives everything an auditor relies on.

It recomputes every event's leaf hash and compares it with the logged one (naming each event
altered, deleted, inserted or moved), rebuilds the tree's root at the size of every signed
head and checkpoint (those stored, those published in the checkpoint file and those an
auditor kept) and checks each signature, and replays the events into the ledger's
invariants. It writes nothing. Memory stays bounded: the tree is streamed through a
frontier, the log through pages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

from ledger.audit.checkpoint import Checkpoint, CheckpointError, NoteVerifier
from ledger.audit.invariants import VALIDATIONS
from ledger.audit.log import AuditLog, notification_leaf
from ledger.audit.merkle import Frontier
from ledger.audit.published import CheckpointFile
from ledger.audit.verifier import EMPTY_ROOT, verify_consistency, verify_signature
from ledger.read.replay import LedgerState, Violation, stored_notifications


@dataclass
class VerifyReport:
    events: int = 0
    logged: int = 0
    heads_checked: int = 0
    latest_head_size: int = 0
    checkpoints_checked: int = 0
    latest_checkpoint_size: int = 0
    problems: list[Violation] = field(default_factory=list)
    unlogged: tuple[int | None, int | None, int] = (None, None, 0)  # first, last, count
    state: LedgerState | None = field(default=None, repr=False)  # the replayed ledger

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict:
        first, last, count = self.unlogged
        return {
            "ok": self.ok, "events": self.events, "logged": self.logged,
            "heads_checked": self.heads_checked, "latest_head_size": self.latest_head_size,
            "checkpoints_checked": self.checkpoints_checked,
            "latest_checkpoint_size": self.latest_checkpoint_size,
            "not_yet_logged": {"first": first, "last": last, "count": count},
            "problems": [
                {"position": p.position, "rule": p.rule, "message": p.message}
                for p in self.problems
            ],
        }


@dataclass
class SignedRoot:
    """A root some signature vouches for at one tree size, and who vouches for it."""

    tree_size: int
    root_hash: bytes
    rule: str
    sources: list[str]
    position: int | None = None
    is_head: bool = False

    @property
    def what(self) -> str:
        kind = "tree head" if self.is_head else "checkpoint"
        return f"the {kind} of size {self.tree_size} ({', '.join(self.sources)})"


class _Differences:
    """Where the events now stored first part from what was signed, to name it."""

    def __init__(self) -> None:
        self.first_changed: tuple[int, int, str] | None = None  # leaf, position, how
        self.matched_size = 0
        self.matched_next_position: int | None = None

    def changed(self, leaf: int, position: int, how: str) -> None:
        if self.first_changed is None:
            self.first_changed = (leaf, position, how)

    def leaf_streamed(self, leaf: int, position: int) -> None:
        if leaf == self.matched_size:
            self.matched_next_position = position

    def matched(self, size: int) -> None:
        self.matched_size, self.matched_next_position = size, None

    def first_difference(self, size: int, position: int | None) -> str:
        if self.first_changed is not None and self.first_changed[0] < size:
            leaf, at, how = self.first_changed
            return f"the first leaf that differs is leaf {leaf} (position {at}, {how})"
        # The stored tree agrees with the events: it was rewritten along with them. The
        # signed roots that still match bound where the change lies.
        return (f"the stored tree was rewritten with the events: the first leaf that differs "
                f"is among leaves {self.matched_size}-{size - 1} (positions "
                f"{self.matched_next_position}-{position}), after the last signed size that "
                f"still matches ({self.matched_size})")


def verify(app, public_pem: bytes, progress: Callable[[int], None] | None = None,
           trusted: Sequence[tuple[str, Checkpoint]] = (),
           checkpoint_file: CheckpointFile | None = None,
           observe: Callable[[object, int], None] | None = None,
           require_checkpoint: bool = True) -> VerifyReport:
    """Checks the store against the audit log, every signed root and the ledger's rules.

    ``trusted`` are checkpoints kept outside Kapok, each with where it came from (already
    parsed, so their signatures are known good); the configured checkpoint file's are
    checked too. ``observe(event, position)`` sees every decoded event, for checks of other
    layers. With ``require_checkpoint``, a store with events but no signed checkpoint fails
    (without, the events past the last checkpoint are reported as not yet logged)."""
    log = AuditLog(app)
    report = VerifyReport()
    problems = report.problems
    checkpoint_file = checkpoint_file or log.checkpoint_file
    signed, latest_checkpoint = _signed_roots(log, public_pem, trusted, checkpoint_file, problems)
    report.heads_checked = sum(1 for root in signed if root.is_head)
    report.latest_head_size = max((r.tree_size for r in signed if r.is_head), default=0)
    report.latest_checkpoint_size = latest_checkpoint.tree_size if latest_checkpoint else 0
    pending = iter(signed)
    next_root = next(pending, None)
    logged = log.logged_leaves()
    pending_logged = next(logged, None)
    frontier = Frontier()
    state = LedgerState()
    differences = _Differences()

    def check_roots_up_to(size: int, position: int | None) -> None:
        nonlocal next_root
        while next_root is not None and next_root.tree_size == size:
            report.checkpoints_checked += not next_root.is_head
            root = frontier.root() if size else EMPTY_ROOT
            if root != next_root.root_hash:
                problems.append(Violation(next_root.rule, f"the events now stored do not give "
                                          f"the root of {next_root.what}: "
                                          f"{differences.first_difference(size, position)}",
                                          next_root.position))
            else:
                differences.matched(size)
            next_root = next(pending, None)

    check_roots_up_to(0, None)
    for notification in stored_notifications(app):
        report.events += 1
        position = notification.id
        digest = notification_leaf(notification)
        # Logged leaves whose positions are no longer in the store were deleted.
        while pending_logged is not None and pending_logged[1] < position:
            problems.append(Violation("event_kept", "a logged event is missing from the "
                                      "store (deleted)", pending_logged[1]))
            differences.changed(pending_logged[0], pending_logged[1], "deleted")
            pending_logged = next(logged, None)
        if pending_logged is not None and pending_logged[1] == position:
            report.logged += 1
            if pending_logged[2] != digest:
                problems.append(Violation("event_unchanged", "the stored event differs from "
                                          "the one logged (altered or moved)", position))
                differences.changed(frontier.size, position, "altered or moved")
            pending_logged = next(logged, None)
        elif pending_logged is None:
            # Past the end of the log: inserted, or written after the follower's last page;
            # no checkpoint covers it. The ledger's rules below still check these events.
            report.unlogged = (report.unlogged[0] or position, position, report.unlogged[2] + 1)
        else:
            problems.append(Violation("event_logged", "an event was inserted into the "
                                      f"middle of the log, at leaf {frontier.size}", position))
            differences.changed(frontier.size, position, "inserted")
        differences.leaf_streamed(frontier.size, position)
        frontier.append(digest)
        check_roots_up_to(frontier.size, position)
        try:
            event = app.mapper.to_domain_event(notification)
        except Exception as error:  # an altered event may not even decode; report, go on
            problems.append(Violation("event_decodes", f"cannot decode: {error}", position))
        else:
            state.apply(event, position)
            if observe:
                observe(event, position)
        if progress:
            progress(position)
    while pending_logged is not None:
        problems.append(Violation("event_kept", "a logged event is missing from the store "
                                  "(deleted)", pending_logged[1]))
        pending_logged = next(logged, None)
    for root in ([next_root] if next_root else []) + list(pending):
        if root.is_head:
            problems.append(Violation("tree_head_root", f"a head signs {root.tree_size} "
                                      f"events but only {frontier.size} are stored (deleted)"))
        else:
            problems.append(Violation(root.rule, f"{root.what} covers {root.tree_size} events "
                                      f"but only {frontier.size} are stored: the log was "
                                      "rolled back"))
    if require_checkpoint and report.events and latest_checkpoint is None:
        problems.append(Violation("checkpoint_signed", f"the store holds {report.events} events "
                                  "but no signed checkpoint (run `kapok audit follow`)"))
    problems += _consistency_problems(log, trusted, latest_checkpoint)
    problems += state.violations + state.unfinished()
    for validation in VALIDATIONS:
        problems += validation(state)
    report.state = state
    return report


def _signed_roots(log: AuditLog, public_pem: bytes, trusted, checkpoint_file: CheckpointFile,
                  problems: list[Violation]) -> tuple[list[SignedRoot], Checkpoint | None]:
    """Every root vouched for, by size (one entry per size and root, naming every source),
    and the latest valid checkpoint stored in the database."""
    roots: dict[tuple[int, bytes, bool], SignedRoot] = {}

    def add(size: int, root: bytes, rule: str, source: str, position=None, is_head=False):
        found = roots.setdefault((size, root, is_head),
                                 SignedRoot(size, root, rule, [], position, is_head))
        found.sources.append(source)

    for head in log.heads():
        if not verify_signature(public_pem, head.message, head.signature):
            problems.append(Violation("tree_head_signed", f"tree head of size {head.tree_size} "
                                      f"has a bad signature (key {head.key_id})"))
        add(head.tree_size, head.root_hash, "tree_head_root", "signed in the database",
            head.last_position, is_head=True)
    notes = log.checkpoint_notes()
    if not notes and not public_pem:
        return sorted(roots.values(), key=lambda root: (root.tree_size, not root.is_head)), None
    verifier = NoteVerifier.of(log.origin, public_pem)
    latest = None
    for note in notes:
        try:
            checkpoint = Checkpoint.parse(note, verifier, origin=log.origin)
        except CheckpointError as error:
            problems.append(Violation("checkpoint_signed", f"a checkpoint stored in the "
                                      f"database does not verify: {error}"))
            continue
        latest = checkpoint
        add(checkpoint.tree_size, checkpoint.root_hash, "checkpoint_root", "in the database")
    try:
        published = checkpoint_file.checkpoints(public_pem)
    except CheckpointError as error:
        problems.append(Violation("checkpoint_signed", str(error)))
        published = []
    for checkpoint in published:
        add(checkpoint.tree_size, checkpoint.root_hash, "published_checkpoint",
            f"published in {checkpoint_file.path}")
    for source, checkpoint in trusted:
        add(checkpoint.tree_size, checkpoint.root_hash, "trusted_checkpoint", f"trusted {source}")
    return sorted(roots.values(), key=lambda root: (root.tree_size, not root.is_head)), latest


def _consistency_problems(log: AuditLog, trusted, latest: Checkpoint | None) -> list[Violation]:
    """Each trusted checkpoint must be proven a prefix of the latest stored one by a
    consistency proof made from the stored tree, as any client would ask for one."""
    problems = []
    for source, checkpoint in trusted:
        if latest is None or checkpoint.tree_size > latest.tree_size:
            continue  # reported above: no checkpoint, or rolled back
        try:
            proof = log.consistency_proof(checkpoint.tree_size, latest.tree_size)
        except KeyError as missing:
            problems.append(Violation("trusted_checkpoint", f"the stored tree lacks node "
                                      f"{missing} to prove the trusted checkpoint of size "
                                      f"{checkpoint.tree_size} ({source}) consistent"))
            continue
        if not verify_consistency(checkpoint.tree_size, latest.tree_size, checkpoint.root_hash,
                                  latest.root_hash, proof):
            problems.append(Violation(
                "trusted_checkpoint", f"today's log (checkpoint of size {latest.tree_size}) is "
                f"not consistent with the trusted checkpoint of size {checkpoint.tree_size} "
                f"({source}): the consistency proof from the stored tree does not verify"))
    return problems
