"""The registry's invariants as pure ``validate_*`` functions over a replayed state.

Each returns every violation it finds, not just the first, so an auditor sees the whole
picture. The write side enforces the same rules before each event; these check afterwards.
"""

from __future__ import annotations

from ledger.read.replay import LedgerState, Violation
from ledger.domain.serials import SerialBlock


def _all_placed_blocks(state: LedgerState) -> list[tuple[str, SerialBlock]]:
    placed = [(f"account {name}", b) for name, blocks in state.holdings.items() for b in blocks]
    placed += [(f"retirement {rid}", b) for rid, blocks in state.retired.items() for b in blocks]
    placed += [(f"cancellation {cid}", b) for cid, blocks in state.cancelled.items() for b in blocks]
    return placed


def validate_no_serial_in_two_places(state: LedgerState) -> list[Violation]:
    """A serial is in exactly one account, retirement or cancellation."""
    violations = []
    # Kapok's serials and each mirrored registry's are numbered apart.
    placed = sorted(_all_placed_blocks(state), key=lambda item: (item[1].mirrored, item[1].first))
    for (where_a, a), (where_b, b) in zip(placed, placed[1:]):
        if b.first <= a.last and a.mirrored == b.mirrored:
            violations.append(Violation(
                "no_serial_in_two_places",
                f"serials {b.first}-{min(a.last, b.last)} are in {where_a} and in {where_b}",
            ))
    return violations


def validate_serials_were_issued(state: LedgerState) -> list[Violation]:
    """Every block lies inside the batch it names, with that batch's project and vintage."""
    violations = []
    for where, block in _all_placed_blocks(state):
        if block.mirrored:
            if not _imported(state, block):
                violations.append(Violation(
                    "serials_were_issued", f"{where} holds {block.serial}, never imported"))
            continue
        batch = state.batches.get(block.batch)
        if batch is None or not (batch.first <= block.first and block.last <= batch.last):
            violations.append(Violation(
                "serials_were_issued", f"{where} holds {block.serial}, never issued"
            ))
        elif (batch.project, batch.vintage) != (block.project, block.vintage):
            violations.append(Violation(
                "serials_were_issued", f"{where} holds {block.serial} labelled with the wrong "
                f"project or vintage (batch {batch.batch} is {batch.project} {batch.vintage})"
            ))
    return violations


def validate_issued_equals_held_retired_cancelled(state: LedgerState) -> list[Violation]:
    """For each batch: issued = held + buffer + reserved + retired + cancelled."""
    placed: dict[int, int] = {batch: 0 for batch in state.batches}
    imported: dict[tuple[int, str], int] = {key: 0 for key in state.imported}
    for _, block in _all_placed_blocks(state):
        if block.mirrored:
            imported[block.batch, block.tail] = imported.get((block.batch, block.tail), 0) \
                + block.quantity
        else:
            placed[block.batch] = placed.get(block.batch, 0) + block.quantity
    mirrored = [
        Violation("issued_equals_held_retired_cancelled",
                  f"mirrored batch {batch}: {state.imported[batch, tail].quantity if (batch, tail) in state.imported else 0} "
                  f"t imported but {quantity} t accounted for")
        for (batch, tail), quantity in sorted(imported.items())
        if (batch, tail) not in state.imported or quantity != state.imported[batch, tail].quantity
    ]
    return mirrored + [
        Violation(
            "issued_equals_held_retired_cancelled",
            f"batch {batch}: {state.batches[batch].quantity if batch in state.batches else 0} "
            f"t issued but {quantity} t accounted for",
        )
        for batch, quantity in sorted(placed.items())
        if batch not in state.batches or quantity != state.batches[batch].quantity
    ]


def _imported(state: LedgerState, block: SerialBlock) -> bool:
    return any(run.first <= block.first and block.last <= run.last
               for run in state.imported.get((block.batch, block.tail), ()))


def validate_buffer_share(state: LedgerState) -> list[Violation]:
    """The buffer pool never holds more of a batch than that batch put into it."""
    violations = []
    pool_kinds = {name for name, kind in state.accounts.values() if kind == "buffer"}
    for name in pool_kinds:
        per_batch: dict[int, int] = {}
        for block in state.holdings.get(name, []):
            per_batch[block.batch] = per_batch.get(block.batch, 0) + block.quantity
        for batch, quantity in per_batch.items():
            issued = state.batches.get(batch)
            if issued and quantity > issued.buffer_quantity:
                violations.append(Violation(
                    "buffer_share", f"{name} holds {quantity} t of batch {batch}, "
                    f"more than its buffer share of {issued.buffer_quantity} t",
                ))
    return violations


VALIDATIONS = (
    validate_no_serial_in_two_places,
    validate_serials_were_issued,
    validate_issued_equals_held_retired_cancelled,
    validate_buffer_share,
)


def validate(state: LedgerState) -> list[Violation]:
    """Every violation: those seen while replaying, then those of the final state."""
    violations = list(state.violations) + state.unfinished()
    for check in VALIDATIONS:
        violations += check(state)
    return violations
