"""C2SP tlog-tiles hash tiles read from the stored perfect-subtree nodes: paths, levels and
widths, on a tree big enough for a tile above the leaves."""

from __future__ import annotations

import contextlib
import hashlib
from types import SimpleNamespace

import pytest

from ledger.audit.merkle import DictNodes, Frontier, root
from ledger.audit.public_log import LogRequestError, NotInSignedLogError, tile
from ledger.audit.verifier import node_hash

SIZE = 256 * 256 + 300  # one full tile at level 1, and one hash of the next


class StoredTree(DictNodes):
    """The nodes the follower stores, and the latest signed size, as AuditLog gives them."""

    def __init__(self, size: int):
        super().__init__()
        frontier = Frontier()
        for number in range(size):
            for level, index, digest in frontier.append(
                    hashlib.sha256(number.to_bytes(8, "big")).digest()):
                self.put(level, index, digest)
        self.signed = size

    def latest_head(self):
        return SimpleNamespace(tree_size=self.signed)

    def nodes(self, level: int, start: int, end: int) -> list[bytes]:
        return [self.node(level, index) for index in range(start, end)
                if (level, index) in self._nodes]


@pytest.fixture(scope="module")
def tree() -> StoredTree:
    return StoredTree(SIZE)


def hashes(data: bytes) -> list[bytes]:
    return [data[at:at + 32] for at in range(0, len(data), 32)]


def test_a_level_one_tile_holds_the_roots_of_each_256_leaves(tree):
    upper = hashes(tile(tree, 1, "000"))
    assert upper == [tree.node(8, index) for index in range(256)]
    assert hashes(tile(tree, 1, "001.p/1")) == [tree.node(8, 256)]


def test_the_tiles_of_a_tree_give_its_root(tree):
    # Leaves 0..65791 are 257 subtrees of 256 (level-1 tiles), then 44 leaves of tile 257.
    nodes = DictNodes()
    for index, digest in enumerate(hashes(tile(tree, 1, "000")) + hashes(tile(tree, 1, "001.p/1"))):
        nodes.put(8, index, digest)
    for index, digest in enumerate(hashes(tile(tree, 0, "257.p/44"))):
        nodes.put(0, 257 * 256 + index, digest)
    for level in range(1, 17):  # the perfect subtrees above, as a client hashes them
        for index in range(SIZE >> level):
            with contextlib.suppress(KeyError):
                nodes.put(level, index, node_hash(nodes.node(level - 1, 2 * index),
                                                  nodes.node(level - 1, 2 * index + 1)))
    assert root(nodes, SIZE) == root(tree, SIZE)


@pytest.mark.parametrize("level, path", [(0, "x001/002"), (1, "001.p/2"), (2, "000.p/2")])
def test_a_tile_the_signed_tree_does_not_complete_is_not_served(tree, level, path):
    with pytest.raises(NotInSignedLogError):
        tile(tree, level, path)


@pytest.mark.parametrize("level, path", [(0, "1"), (0, "0001"), (0, "x000/001"), (0, "001.p/256"),
                                         (0, "001.p/01"), (0, "001/"), (0, "x1/001"),
                                         (64, "000"), (0, "٠٠٠")])
def test_a_path_that_is_not_a_tile_is_a_request_error(tree, level, path):
    with pytest.raises(LogRequestError):
        tile(tree, level, path)
