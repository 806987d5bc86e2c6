"""The Merkle tree over the event log: roots, proofs and the growing right edge.

Nodes are stored only for perfect subtrees: node (level, index) is the root of leaves
[index * 2**level, (index + 1) * 2**level), and level 0 holds the leaf hashes. Any other
subtree root is computed from O(log n) of them, so stored nodes never change as the log grows.
"""

from __future__ import annotations

from typing import Protocol

from ledger.audit.verifier import EMPTY_ROOT, node_hash


class NodeReader(Protocol):
    def node(self, level: int, index: int) -> bytes:
        """The stored root of the perfect subtree (level, index)."""


class DictNodes:
    """Stored nodes in a dict, for tests and small trees."""

    def __init__(self) -> None:
        self._nodes: dict[tuple[int, int], bytes] = {}

    def put(self, level: int, index: int, hash_: bytes) -> None:
        self._nodes[level, index] = hash_

    def node(self, level: int, index: int) -> bytes:
        return self._nodes[level, index]


def _split(length: int) -> int:
    """The largest power of two smaller than ``length`` (which must be at least 2)."""
    return 1 << ((length - 1).bit_length() - 1)


def subtree_root(nodes: NodeReader, start: int, end: int) -> bytes:
    """The RFC 6962 hash of leaves [start, end); raises ValueError unless 0 <= start <= end."""
    if not 0 <= start <= end:
        raise ValueError(f"no subtree of leaves [{start}, {end})")
    length = end - start
    if length == 0:
        return EMPTY_ROOT
    if length & (length - 1) == 0 and start % length == 0:
        level = length.bit_length() - 1
        return nodes.node(level, start >> level)
    middle = start + _split(length)
    return node_hash(subtree_root(nodes, start, middle), subtree_root(nodes, middle, end))


def root(nodes: NodeReader, size: int) -> bytes:
    """The root of the tree of the first ``size`` leaves; EMPTY_ROOT for none."""
    return subtree_root(nodes, 0, size)


def inclusion_proof(nodes: NodeReader, index: int, size: int) -> list[bytes]:
    """RFC 6962 PATH: the siblings from leaf ``index`` up to the root of ``size`` leaves.

    Raises ValueError unless 0 <= index < size.
    """
    if not 0 <= index < size:
        raise ValueError(f"no leaf {index} in a tree of {size}")
    siblings = []
    start, end = 0, size
    while end - start > 1:
        middle = start + _split(end - start)
        if index < middle:
            siblings.append(subtree_root(nodes, middle, end))
            end = middle
        else:
            siblings.append(subtree_root(nodes, start, middle))
            start = middle
    return siblings[::-1]  # found root-down, listed leaf-up


def consistency_proof(nodes: NodeReader, size1: int, size2: int) -> list[bytes]:
    """RFC 6962 PROOF: the hashes that show the tree of ``size2`` extends that of ``size1``.

    Empty when size1 is 0 or equals size2. Raises ValueError unless 0 <= size1 <= size2.
    """
    if not 0 <= size1 <= size2:
        raise ValueError(f"no consistency proof from {size1} leaves to {size2}")
    if size1 in (0, size2):
        return []
    hashes = []
    start, end = 0, size2
    # The old tree's root is left out while it is a whole subtree on the left edge (SUBPROOF's b).
    on_left_edge = True
    while size1 != end:
        middle = start + _split(end - start)
        if size1 <= middle:
            hashes.append(subtree_root(nodes, middle, end))
            end = middle
        else:
            hashes.append(subtree_root(nodes, start, middle))
            start, on_left_edge = middle, False
    if not on_left_edge:
        hashes.append(subtree_root(nodes, start, end))
    return hashes[::-1]


class Frontier:
    """The right edge of a growing tree: one perfect subtree root per set bit of its size."""

    def __init__(self) -> None:
        self._size = 0
        self._edge: list[bytes] = []  # largest subtree first

    @classmethod
    def load(cls, nodes: NodeReader, size: int) -> Frontier:
        """The edge of the tree of ``size`` leaves, read from O(log size) stored nodes."""
        if size < 0:
            raise ValueError(f"no tree of {size} leaves")
        frontier = cls()
        start = 0
        for level in reversed(range(size.bit_length())):
            if size >> level & 1:
                frontier._edge.append(nodes.node(level, start >> level))
                start += 1 << level
        frontier._size = size
        return frontier

    @property
    def size(self) -> int:
        return self._size

    def append(self, leaf_hash: bytes) -> list[tuple[int, int, bytes]]:
        """Adds a leaf; returns every (level, index, hash) it completes, the leaf included."""
        level, index, hash_ = 0, self._size, leaf_hash
        completed = [(level, index, hash_)]
        while index & 1:  # a right child completes its parent
            hash_ = node_hash(self._edge.pop(), hash_)
            level, index = level + 1, index >> 1
            completed.append((level, index, hash_))
        self._edge.append(hash_)
        self._size += 1
        return completed

    def root(self) -> bytes:
        """The tree's root, folded from the right edge without reading any node."""
        if not self._edge:
            return EMPTY_ROOT
        hash_ = self._edge[-1]
        for left in reversed(self._edge[:-1]):
            hash_ = node_hash(left, hash_)
        return hash_
