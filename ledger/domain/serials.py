"""Serial blocks: contiguous ranges of credit serial numbers and the arithmetic on them.

A block is one contiguous run of serial numbers from one issuance batch. Accounts hold sorted
lists of blocks; moving credits splits at most one block at each end of the range taken, so
every operation costs O(blocks touched), never O(tonnes).

Kapok's printed serial format, in the spirit of Verra's and Gold Standard's::

    KAP-{batch}-{first}-{last}-{project}-{vintage}-{country}
    KAP-12-1000001-1008500-VCS1067-2021-PE

``first`` and ``last`` come from one registry-wide counter, so no serial number is ever issued
twice; ``project`` is the project's registry id without its hyphens.

Blocks of a project mirrored from another registry (Verra) keep that registry's serials: their
``tail`` is the rest of its serial after ``first-last``, and they print as
``{batch}-{first}-{last}-{tail}``, e.g.
``19380-941382555-941412554-VCS-VCU-1310-VER-CN-13-3005-01012022-31102022-0``.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from typing import Iterable, Sequence

from ledger.domain.errors import (
    InsufficientCreditsError,
    InvalidQuantityError,
    InvalidSerialError,
    SerialsNotHeldError,
)
from ledger.domain.verra import parse_verra_serial

SERIAL_PREFIX = "KAP"
# ASCII digits only, and at most 18 of them: serials stay far below 10**18.
_SERIAL_PATTERN = re.compile(
    r"^KAP-(?P<batch>[0-9]{1,18})-(?P<first>[0-9]{1,18})-(?P<last>[0-9]{1,18})"
    r"-(?P<project>[A-Z0-9]{1,40})-(?P<vintage>[0-9]{4})-(?P<country>[A-Z]{2})$"
)
_RANGE_PATTERN = re.compile(r"^(?P<first>[0-9]{1,18})(?:-(?P<last>[0-9]{1,18}))?$")
MAX_SERIAL_TEXT = 120
# Verra's printed serials have 12 or 13 parts; fewer hyphens cannot be one.
_VERRA_MIN_HYPHENS = 11


@dataclass(frozen=True, order=True, slots=True)
class SerialBlock:
    """Serials ``first``..``last`` (inclusive) of one issuance batch.

    Blocks order by vintage, then batch, then first serial: "oldest vintage first".
    """

    vintage: int
    batch: int
    first: int
    last: int
    project: str
    country: str
    tail: str = ""  # the rest of a mirrored registry's serial; "" for Kapok's own

    def __post_init__(self) -> None:
        if self.first < 1 or self.last < self.first:
            raise InvalidSerialError(f"invalid serial block {self.first}-{self.last}")

    @property
    def quantity(self) -> int:
        return self.last - self.first + 1

    def __deepcopy__(self, memo) -> SerialBlock:
        return self  # immutable: cached accounts are deep-copied on every load

    @property
    def serial(self) -> str:
        """The block's printed serial number."""
        if self.tail:
            return f"{self.batch}-{self.first}-{self.last}-{self.tail}"
        project = self.project.replace("-", "").upper()
        return (
            f"{SERIAL_PREFIX}-{self.batch}-{self.first}-{self.last}"
            f"-{project}-{self.vintage}-{self.country}"
        )

    def sub(self, first: int, last: int) -> SerialBlock:
        """The part of this block from ``first`` to ``last``, which must lie inside it."""
        if not (self.first <= first <= last <= self.last):
            raise InvalidSerialError(f"{first}-{last} is not inside {self.first}-{self.last}")
        return SerialBlock(self.vintage, self.batch, first, last, self.project, self.country,
                           self.tail)

    @property
    def mirrored(self) -> bool:
        """Whether another registry (Verra) is the registry of record of these serials."""
        return bool(self.tail)

    def contains(self, serial: int) -> bool:
        return self.first <= serial <= self.last

    def to_list(self) -> list:
        values = [self.vintage, self.batch, self.first, self.last, self.project, self.country]
        return [*values, self.tail] if self.tail else values

    @classmethod
    def from_list(cls, values: Sequence) -> SerialBlock:
        vintage, batch, first, last, project, country, *tail = values
        return cls(int(vintage), int(batch), int(first), int(last), str(project), str(country),
                   str(tail[0]) if tail else "")


@dataclass(frozen=True)
class SerialRange:
    """A range of serial numbers a user asks for: ``first``..``last`` inclusive."""

    first: int
    last: int

    def __post_init__(self) -> None:
        if not (isinstance(self.first, int) and isinstance(self.last, int)) \
                or self.first < 1 or self.last < self.first:
            raise InvalidSerialError(
                f"invalid serial range {self.first}-{self.last}: first must be >= 1 and <= last"
            )

    @property
    def quantity(self) -> int:
        return self.last - self.first + 1

    @classmethod
    def parse(cls, text: str) -> SerialRange:
        """Reads ``1000001-1000100``, a single ``1000001``, a printed block serial, or a
        mirrored block's serial as Verra prints it (its first..last).

        Raises InvalidSerialError for anything else.
        """
        text = (text or "").strip().upper()
        if len(text) > MAX_SERIAL_TEXT:
            raise InvalidSerialError(f"invalid serial: longer than {MAX_SERIAL_TEXT} characters")
        match = _SERIAL_PATTERN.match(text) or _RANGE_PATTERN.match(text)
        if not match and text.count("-") >= _VERRA_MIN_HYPHENS:
            verra = parse_verra_serial(text)  # raises InvalidSerialError saying what is wrong
            return cls(verra.first, verra.last)
        if not match:
            raise InvalidSerialError(
                f"invalid serial {text!r}: expected FIRST-LAST, a serial number, "
                f"KAP-batch-first-last-project-vintage-country, or a Verra serial"
            )
        first = int(match["first"])
        last = int(match["last"]) if match["last"] else first
        if first < 1 or last < first:
            raise InvalidSerialError(f"invalid serial range {first}-{last}: first must be <= last")
        return cls(first, last)


def total_quantity(blocks: Iterable[SerialBlock]) -> int:
    return sum(block.quantity for block in blocks)


def take_quantity(
    blocks: Sequence[SerialBlock], quantity: int
) -> tuple[list[SerialBlock], list[SerialBlock]]:
    """Takes ``quantity`` tonnes from sorted ``blocks``, oldest vintage first.

    Returns (taken, remaining); splits at most one block. Raises InsufficientCreditsError,
    InvalidQuantityError.
    """
    if quantity < 0:
        raise InvalidQuantityError(f"invalid quantity {quantity}: cannot take negative tonnes")
    taken: list[SerialBlock] = []
    needed = quantity
    index = 0
    while needed and index < len(blocks):
        block = blocks[index]
        if block.quantity <= needed:
            taken.append(block)
            needed -= block.quantity
            index += 1
        else:
            taken.append(block.sub(block.first, block.first + needed - 1))
            remaining = [block.sub(block.first + needed, block.last), *blocks[index + 1 :]]
            return taken, remaining
    if needed:
        raise InsufficientCreditsError(
            f"insufficient credits: {quantity} t requested, {total_quantity(blocks)} t held"
        )
    return taken, list(blocks[index:])


def take_range(
    blocks: Sequence[SerialBlock], wanted: SerialRange
) -> tuple[list[SerialBlock], list[SerialBlock]]:
    """Takes exactly the serials of ``wanted`` from ``blocks`` (sorted by :func:`sort_key`).

    The range may span several adjacent blocks (e.g. two pieces of one batch received at
    different times). Returns (taken, remaining). Raises SerialsNotHeldError if any serial of
    the range is not among the blocks.
    """
    by_serial = sorted(range(len(blocks)), key=lambda i: blocks[i].first)
    firsts = [blocks[i].first for i in by_serial]
    position = bisect.bisect_right(firsts, wanted.first) - 1
    taken: list[SerialBlock] = []
    touched: set[int] = set()
    cursor = wanted.first
    while cursor <= wanted.last:
        if position < 0 or position >= len(by_serial):
            break
        index = by_serial[position]
        block = blocks[index]
        if not block.contains(cursor):
            break
        end = min(block.last, wanted.last)
        taken.append(block.sub(cursor, end))
        touched.add(index)
        cursor = end + 1
        position += 1
    if cursor <= wanted.last:
        raise SerialsNotHeldError(
            f"serials {wanted.first}-{wanted.last} are not all held here "
            f"(serial {cursor} is missing)",
            missing=cursor,
        )
    remaining: list[SerialBlock] = []
    for index, block in enumerate(blocks):
        if index not in touched:
            remaining.append(block)
            continue
        if block.first < wanted.first:
            remaining.append(block.sub(block.first, wanted.first - 1))
        if block.last > wanted.last:
            remaining.append(block.sub(wanted.last + 1, block.last))
    remaining.sort()
    return taken, remaining


def merge_blocks(blocks: Iterable[SerialBlock]) -> list[SerialBlock]:
    """Sorts blocks and joins neighbours of one batch (…-10 and 11-…) into one block.

    Raises InvalidSerialError if two blocks overlap: a serial can never be in two places.
    """
    merged: list[SerialBlock] = []
    for block in sorted(blocks):
        if merged:
            previous = merged[-1]
            if _same_batch(previous, block) and block.first <= previous.last:
                raise InvalidSerialError(
                    f"overlapping serials {previous.first}-{previous.last} "
                    f"and {block.first}-{block.last}"
                )
            if _same_batch(previous, block) and previous.last + 1 == block.first:
                merged[-1] = _relabel(previous, previous.first, block.last)
                continue
        merged.append(block)
    return merged


def _same_batch(one: SerialBlock, other: SerialBlock) -> bool:
    # A Verra batch id may equal one of Kapok's own: the tail tells the registries apart.
    return one.batch == other.batch and one.tail == other.tail


def _key(block: SerialBlock) -> tuple[int, int, int]:
    return (block.vintage, block.batch, block.first)


def add_blocks(held: Sequence[SerialBlock], added: Iterable[SerialBlock]) -> list[SerialBlock]:
    """``held`` (sorted, compact) with ``added`` inserted and joined to neighbours of their
    batch: O(log n) to find each place, so receiving stays quick for accounts of many blocks.

    Raises InvalidSerialError if an added block overlaps a held one."""
    result = list(held)
    for block in added:
        at = bisect.bisect_left(result, _key(block), key=_key)
        before = result[at - 1] if at > 0 and _same_batch(result[at - 1], block) else None
        after = result[at] if at < len(result) and _same_batch(result[at], block) else None
        if (before and before.last >= block.first) or (after and after.first <= block.last):
            raise InvalidSerialError(f"serials {block.first}-{block.last} are already held")
        first, last, start, stop = block.first, block.last, at, at
        if before and before.last + 1 == block.first:
            first, start = before.first, at - 1
        if after and block.last + 1 == after.first:
            last, stop = after.last, at + 1
        result[start:stop] = [_relabel(block, first, last)]
    return result


def remove_blocks(held: Sequence[SerialBlock], removed: Iterable[SerialBlock]) -> list[SerialBlock]:
    """``held`` without ``removed``, each of which lies inside one held block (as the blocks
    :func:`take_quantity` and :func:`take_range` return do): O(log n) to find each.

    Raises SerialsNotHeldError if a removed block is not wholly inside a held one."""
    result = list(held)
    for block in removed:
        at = bisect.bisect_right(result, _key(block), key=_key) - 1
        holder = result[at] if at >= 0 else None
        if holder is None or not _same_batch(holder, block) or not (
            holder.first <= block.first and block.last <= holder.last
        ):
            starts_inside = holder is not None and _same_batch(holder, block) \
                and holder.first <= block.first <= holder.last
            raise SerialsNotHeldError(
                f"serials {block.first}-{block.last} are not all held here",
                missing=holder.last + 1 if starts_inside else block.first,
            )
        pieces = []
        if holder.first < block.first:
            pieces.append(_relabel(holder, holder.first, block.first - 1))
        if block.last < holder.last:
            pieces.append(_relabel(holder, block.last + 1, holder.last))
        result[at:at + 1] = pieces
    return result


def _relabel(block: SerialBlock, first: int, last: int) -> SerialBlock:
    # The constructor, not dataclasses.replace: this is on the hot path of every move.
    return SerialBlock(block.vintage, block.batch, first, last, block.project, block.country,
                       block.tail)


class BlockSet:
    """Many blocks held in one place, kept as sorted runs of plain integers per batch.

    For replaying long histories: placing or removing a block is a bisect over ints and a
    list insert, both in C, where a sorted list of blocks compares Python objects. Iterating
    gives the blocks (oldest vintage first) as an account's list would hold them."""

    __slots__ = ("_runs",)

    def __init__(self, blocks: Iterable[SerialBlock] = ()):
        # (vintage, batch, project, country, tail) -> (firsts, lasts), sorted and disjoint
        self._runs: dict[tuple[int, int, str, str, str], tuple[list[int], list[int]]] = {}
        for block in blocks:
            self.add(block)

    def add(self, block: SerialBlock) -> None:
        """Places ``block``, joining adjacent runs. Raises InvalidSerialError, changing
        nothing, if any of its serials is here already."""
        key = (block.vintage, block.batch, block.project, block.country, block.tail)
        runs = self._runs.get(key)
        if runs is None:
            self._runs[key] = ([block.first], [block.last])
            return
        firsts, lasts = runs
        at = bisect.bisect_left(firsts, block.first)
        if (at > 0 and lasts[at - 1] >= block.first) or (
                at < len(firsts) and firsts[at] <= block.last):
            raise InvalidSerialError(f"serials {block.first}-{block.last} are already held")
        joins_before = at > 0 and lasts[at - 1] + 1 == block.first
        joins_after = at < len(firsts) and block.last + 1 == firsts[at]
        if joins_before and joins_after:
            lasts[at - 1] = lasts[at]
            del firsts[at], lasts[at]
        elif joins_before:
            lasts[at - 1] = block.last
        elif joins_after:
            firsts[at] = block.first
        else:
            firsts.insert(at, block.first)
            lasts.insert(at, block.last)

    def remove(self, block: SerialBlock) -> None:
        """Takes ``block`` out of the run holding it. Raises SerialsNotHeldError, changing
        nothing, unless one run holds all of it."""
        key = (block.vintage, block.batch, block.project, block.country, block.tail)
        firsts, lasts = self._runs.get(key, ((), ()))
        at = bisect.bisect_right(firsts, block.first) - 1
        if at < 0 or lasts[at] < block.last:
            starts_inside = at >= 0 and block.first <= lasts[at]
            raise SerialsNotHeldError(
                f"serials {block.first}-{block.last} are not all held here",
                missing=lasts[at] + 1 if starts_inside else block.first,
            )
        first, last = firsts[at], lasts[at]
        if first < block.first and block.last < last:
            lasts[at] = block.first - 1
            firsts.insert(at + 1, block.last + 1)
            lasts.insert(at + 1, last)
        elif first < block.first:
            lasts[at] = block.first - 1
        elif block.last < last:
            firsts[at] = block.last + 1
        else:
            del firsts[at], lasts[at]
            if not firsts:
                del self._runs[key]

    def __iter__(self):
        for key in sorted(self._runs):
            vintage, batch, project, country, tail = key
            firsts, lasts = self._runs[key]
            for first, last in zip(firsts, lasts):
                yield SerialBlock(vintage, batch, first, last, project, country, tail)

    def __len__(self) -> int:
        return sum(len(firsts) for firsts, _ in self._runs.values())

    @property
    def quantity(self) -> int:
        return sum(sum(lasts) - sum(firsts) + len(firsts) for firsts, lasts in self._runs.values())
