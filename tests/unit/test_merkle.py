"""Rules of the ledger's Merkle tree, its signed tree heads and the standalone proof verifier."""

from __future__ import annotations

import ast
import base64
import json
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.audit import merkle, verifier
from ledger.audit.merkle import DictNodes, Frontier, consistency_proof, inclusion_proof
from ledger.audit.verifier import (
    EMPTY_ROOT,
    leaf_hash,
    leaf_input,
    node_hash,
    tree_head_message,
    verify_consistency,
    verify_inclusion,
    verify_proof_file,
    verify_signature,
)

SIZES = st.integers(1, 300)
LARGE_SIZES = st.integers(301, 2000)
few_large_examples = settings(max_examples=4, deadline=None)
TIMESTAMP_MS = 1_764_000_000_000


def reference_root(leaves: list[bytes]) -> bytes:
    """RFC 6962's MTH, written straight from its definition."""
    if not leaves:
        return EMPTY_ROOT
    if len(leaves) == 1:
        return leaves[0]
    split = 1
    while split * 2 < len(leaves):
        split *= 2
    return node_hash(reference_root(leaves[:split]), reference_root(leaves[split:]))


def leaves_of(count: int) -> list[bytes]:
    return [leaf_hash(b"event %d" % i) for i in range(count)]


def stored(leaves: list[bytes]) -> DictNodes:
    """The nodes a ledger stores while appending ``leaves`` one by one."""
    nodes, frontier = DictNodes(), Frontier()
    for leaf in leaves:
        for level, index, hash_ in frontier.append(leaf):
            nodes.put(level, index, hash_)
    return nodes


def flipped(data: bytes, at: int = 0) -> bytes:
    return data[:at] + bytes([data[at] ^ 1]) + data[at + 1:]


class CountingNodes:
    def __init__(self, nodes: DictNodes) -> None:
        self.nodes, self.reads = nodes, 0

    def node(self, level: int, index: int) -> bytes:
        self.reads += 1
        return self.nodes.node(level, index)


# --- Known answers: Certificate Transparency's test vectors --------------------------------

CT_LEAF_INPUTS = [b"", b"\x00", b"\x10", b"\x20\x21", b"\x30\x31", b"\x40\x41\x42\x43",
                  bytes(range(0x50, 0x58)), bytes(range(0x60, 0x70))]
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
H_1 = "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"
H_2_3 = "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"
H_4 = "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"
H_5 = "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"
H_6_7 = "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"
H_4_7 = "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"
CT_INCLUSION_PROOFS = [  # (leaf index, tree size, proof)
    (0, 1, []),
    (0, 8, [H_1, H_2_3, H_4_7]),
    (5, 8, [H_4, H_6_7, CT_ROOTS[4]]),
    (2, 3, [CT_ROOTS[2]]),
    (1, 5, [CT_ROOTS[1], H_2_3, H_4]),
]
CT_CONSISTENCY_PROOFS = [  # (old size, new size, proof)
    (1, 1, []),
    (1, 8, [H_1, H_2_3, H_4_7]),
    (6, 8, [H_5, H_6_7, CT_ROOTS[4]]),
    (2, 5, [H_2_3, H_4]),
]
CT_LEAVES = [leaf_hash(data) for data in CT_LEAF_INPUTS]


@pytest.mark.parametrize("size", range(9))
def test_the_ct_test_leaves_give_the_published_root_at_every_size(size):
    nodes, frontier = stored(CT_LEAVES[:size]), Frontier.load(stored(CT_LEAVES), size)

    assert merkle.root(nodes, size).hex() == CT_ROOTS[size]
    assert frontier.root().hex() == CT_ROOTS[size]
    assert reference_root(CT_LEAVES[:size]).hex() == CT_ROOTS[size]


@pytest.mark.parametrize("index, size, proof", CT_INCLUSION_PROOFS)
def test_inclusion_proofs_of_the_ct_test_leaves_are_the_published_ones(index, size, proof):
    found = inclusion_proof(stored(CT_LEAVES), index, size)

    assert [hash_.hex() for hash_ in found] == proof
    assert verify_inclusion(CT_LEAVES[index], index, size, found, bytes.fromhex(CT_ROOTS[size]))


@pytest.mark.parametrize("size1, size2, proof", CT_CONSISTENCY_PROOFS)
def test_consistency_proofs_of_the_ct_test_leaves_are_the_published_ones(size1, size2, proof):
    found = consistency_proof(stored(CT_LEAVES), size1, size2)

    assert [hash_.hex() for hash_ in found] == proof
    assert verify_consistency(size1, size2, bytes.fromhex(CT_ROOTS[size1]),
                              bytes.fromhex(CT_ROOTS[size2]), found)


# --- Hashing and the signed message --------------------------------------------------------


def test_a_leaf_never_hashes_like_an_inner_node_over_the_same_bytes():
    left, right = leaf_hash(b"a"), leaf_hash(b"b")

    assert leaf_hash(left + right) != node_hash(left, right)


def test_the_leaf_input_is_sorted_compact_json_with_the_state_in_base64():
    data = leaf_input("0c2f-id", 3, "ledger.domain.retirements:Retirement.Recorded", b"\x00\xff{}")

    assert data == (b'{"originator_id":"0c2f-id","originator_version":3,'
                    b'"state":"AP97fQ==","topic":"ledger.domain.retirements:Retirement.Recorded"}')


def test_the_tree_head_message_packs_size_and_time_in_eight_bytes_each_before_the_root():
    root = bytes(range(32))

    message = tree_head_message(40, TIMESTAMP_MS, root)

    assert message == (b"kapok-tree-head-v1\x00" + (40).to_bytes(8, "big")
                       + TIMESTAMP_MS.to_bytes(8, "big") + root)


# --- The stored tree against the reference -------------------------------------------------


def assert_frontier_follows_the_reference(size: int) -> None:
    leaves, frontier = leaves_of(size), Frontier()
    assert frontier.root() == EMPTY_ROOT
    for count, leaf in enumerate(leaves, start=1):
        frontier.append(leaf)
        assert frontier.size == count
        assert frontier.root() == reference_root(leaves[:count])


@settings(max_examples=20, deadline=None)
@given(size=SIZES)
def test_the_frontier_root_is_the_reference_root_at_every_size(size):
    assert_frontier_follows_the_reference(size)


@few_large_examples
@given(size=LARGE_SIZES)
def test_the_frontier_root_is_the_reference_root_in_large_trees(size):
    frontier = Frontier()
    for leaf in leaves_of(size):
        frontier.append(leaf)

    assert frontier.root() == reference_root(leaves_of(size))


def test_appending_a_leaf_returns_every_perfect_subtree_it_completes():
    frontier = Frontier()
    for leaf in CT_LEAVES[:7]:
        frontier.append(leaf)

    completed = frontier.append(CT_LEAVES[7])

    assert completed == [(0, 7, CT_LEAVES[7]), (1, 3, reference_root(CT_LEAVES[6:8])),
                         (2, 1, reference_root(CT_LEAVES[4:8])),
                         (3, 0, reference_root(CT_LEAVES))]


@settings(deadline=None)
@given(size=SIZES, data=st.data())
def test_stored_nodes_give_the_reference_root_of_the_tree_and_of_any_range(size, data):
    leaves = leaves_of(size)
    nodes = stored(leaves)
    start = data.draw(st.integers(0, size), label="start")
    end = data.draw(st.integers(start, size), label="end")

    assert merkle.root(nodes, size) == reference_root(leaves)
    assert merkle.subtree_root(nodes, start, end) == reference_root(leaves[start:end])


@few_large_examples
@given(size=LARGE_SIZES, data=st.data())
def test_a_root_or_proof_reads_only_logarithmically_many_nodes(size, data):
    nodes = CountingNodes(stored(leaves_of(size)))
    index = data.draw(st.integers(0, size - 1), label="index")
    bound = 2 * size.bit_length()

    merkle.root(nodes, size)
    assert nodes.reads == bin(size).count("1")
    nodes.reads = 0
    inclusion_proof(nodes, index, size)
    assert nodes.reads <= bound
    nodes.reads = 0
    consistency_proof(nodes, index + 1, size)
    assert nodes.reads <= bound


@settings(deadline=None)
@given(stop=st.integers(0, 300), more=st.integers(1, 40))
def test_a_loaded_frontier_grows_to_the_same_roots_as_one_that_never_stopped(stop, more):
    leaves = leaves_of(stop + more)
    nodes = CountingNodes(stored(leaves[:stop]))
    loaded = Frontier.load(nodes, stop)
    assert nodes.reads == bin(stop).count("1")

    never_stopped = Frontier()
    for leaf in leaves[:stop]:
        never_stopped.append(leaf)
    for leaf in leaves[stop:]:
        assert loaded.append(leaf) == never_stopped.append(leaf)
        assert loaded.size == never_stopped.size
        assert loaded.root() == never_stopped.root()


@pytest.mark.parametrize(
    "build",
    [
        lambda nodes: merkle.subtree_root(nodes, 3, 2),
        lambda nodes: merkle.subtree_root(nodes, -1, 2),
        lambda nodes: inclusion_proof(nodes, 4, 4),
        lambda nodes: inclusion_proof(nodes, -1, 4),
        lambda nodes: inclusion_proof(nodes, 0, 0),
        lambda nodes: consistency_proof(nodes, 3, 2),
        lambda nodes: consistency_proof(nodes, -1, 2),
        lambda nodes: Frontier.load(nodes, -1),
    ],
)
def test_cannot_ask_for_ranges_outside_the_tree(build):
    with pytest.raises(ValueError):
        build(stored(leaves_of(4)))


# --- Inclusion proofs ----------------------------------------------------------------------


def tree_for_proofs(size: int, extra: int = 8) -> tuple[list[bytes], DictNodes]:
    """A tree a few leaves longer than ``size``, so heads of other sizes exist too."""
    leaves = leaves_of(size + extra)
    return leaves, stored(leaves)


@settings(deadline=None)
@given(size=SIZES, data=st.data())
def test_every_inclusion_proof_verifies_and_fails_once_anything_is_changed(size, data):
    leaves, nodes = tree_for_proofs(size)
    index = data.draw(st.integers(0, size - 1), label="index")
    root = merkle.root(nodes, size)
    proof = inclusion_proof(nodes, index, size)
    other_index = data.draw(st.integers(0, size - 1).filter(lambda i: i != index)
                            if size > 1 else st.just(size), label="other_index")
    other_size = data.draw(st.integers(index + 1, size + 8).filter(lambda n: n != size),
                           label="other_size")

    assert verify_inclusion(leaves[index], index, size, proof, root)
    assert not verify_inclusion(leaf_hash(b"forged"), index, size, proof, root)
    assert not verify_inclusion(leaves[index], other_index, size, proof, root)
    assert not verify_inclusion(leaves[index], index, size, proof, flipped(root))
    assert not verify_inclusion(leaves[index], index, size, proof + [leaves[0]], root)
    if proof:
        assert not verify_inclusion(leaves[index], index, size, proof[:-1], root)
        assert not verify_inclusion(leaves[index], index, size, [flipped(proof[0]), *proof[1:]],
                                    root)
    # A proof is only as good as the signed (size, root) pair it is checked against.
    assert not verify_inclusion(leaves[index], index, other_size, proof,
                                merkle.root(nodes, other_size))


@few_large_examples
@given(size=LARGE_SIZES, data=st.data())
def test_inclusion_proofs_verify_in_large_trees(size, data):
    leaves, nodes = tree_for_proofs(size, extra=0)
    index = data.draw(st.integers(0, size - 1), label="index")

    assert verify_inclusion(leaves[index], index, size, inclusion_proof(nodes, index, size),
                            merkle.root(nodes, size))


@pytest.mark.parametrize(
    "index, size, proof, root",
    [
        (8, 8, [], bytes(32)),            # index past the end
        (-1, 8, [], bytes(32)),           # negative index
        (0, 0, [], EMPTY_ROOT),           # the empty tree has no leaves
        (0, 2, ["not bytes"], bytes(32)),  # proof element of the wrong type
        (0, 2, [b"short"], bytes(32)),    # proof element of the wrong length
        (0, 2, [bytes(32)], b"short"),    # root of the wrong length
    ],
)
def test_a_malformed_inclusion_check_fails_without_raising(index, size, proof, root):
    assert not verify_inclusion(leaf_hash(b"x"), index, size, proof, root)


# --- Consistency proofs --------------------------------------------------------------------


@settings(deadline=None)
@given(size2=SIZES, data=st.data())
def test_every_consistency_proof_verifies_and_fails_once_anything_is_changed(size2, data):
    _, nodes = tree_for_proofs(size2)
    size1 = data.draw(st.integers(1, size2), label="size1")
    root1, root2 = merkle.root(nodes, size1), merkle.root(nodes, size2)
    proof = consistency_proof(nodes, size1, size2)
    other_size2 = data.draw(st.integers(size1, size2 + 8).filter(lambda n: n != size2),
                            label="other_size2")

    assert verify_consistency(size1, size2, root1, root2, proof)
    assert not verify_consistency(size1, size2, flipped(root1), root2, proof)
    assert not verify_consistency(size1, size2, root1, flipped(root2), proof)
    assert not verify_consistency(size1, size2, root1, root2, proof + [root1])
    if size1 < size2:
        assert not verify_consistency(size2, size1, root2, root1, proof)
    if proof:
        assert not verify_consistency(size1, size2, root1, root2, proof[:-1])
        for at in range(len(proof)):
            tampered = proof[:at] + [flipped(proof[at])] + proof[at + 1:]
            assert not verify_consistency(size1, size2, root1, root2, tampered)
    # As with inclusion, the proof binds the two signed (size, root) pairs it was made for.
    if size2 > 1:  # (the empty tree, size 0, is extended by every tree with an empty proof)
        other_size1 = data.draw(st.integers(1, size2).filter(lambda n: n != size1),
                                label="other_size1")
        assert not verify_consistency(other_size1, size2, merkle.root(nodes, other_size1),
                                      root2, proof)
    assert not verify_consistency(size1, other_size2, root1, merkle.root(nodes, other_size2),
                                  proof)


@few_large_examples
@given(size2=LARGE_SIZES, data=st.data())
def test_consistency_proofs_verify_in_large_trees(size2, data):
    _, nodes = tree_for_proofs(size2, extra=0)
    size1 = data.draw(st.integers(1, size2), label="size1")

    assert verify_consistency(size1, size2, merkle.root(nodes, size1), merkle.root(nodes, size2),
                              consistency_proof(nodes, size1, size2))


def test_every_tree_extends_the_empty_tree_with_an_empty_proof():
    nodes = stored(leaves_of(5))
    root5 = merkle.root(nodes, 5)

    assert consistency_proof(nodes, 0, 5) == []
    assert verify_consistency(0, 5, EMPTY_ROOT, root5, [])
    assert not verify_consistency(0, 5, EMPTY_ROOT, root5, [root5])
    assert not verify_consistency(0, 5, root5, root5, [])


def test_a_tree_extends_itself_only_with_an_empty_proof_and_the_same_root():
    nodes = stored(leaves_of(5))
    root5 = merkle.root(nodes, 5)

    assert consistency_proof(nodes, 5, 5) == []
    assert verify_consistency(5, 5, root5, root5, [])
    assert not verify_consistency(5, 5, root5, root5, [root5])
    assert not verify_consistency(5, 5, root5, merkle.root(nodes, 4), [])


@pytest.mark.parametrize(
    "size1, size2, proof",
    [(5, 4, [bytes(32)]), (-1, 4, []), (2, 4, []), (2, 4, ["not bytes"]), (2, 4, [b"short"])],
)
def test_a_malformed_consistency_check_fails_without_raising(size1, size2, proof):
    assert not verify_consistency(size1, size2, bytes(32), bytes(32), proof)


# --- Signatures ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def registry_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def pem_of(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def test_a_signed_tree_head_verifies_with_the_registry_key_only(registry_key):
    message = tree_head_message(40, TIMESTAMP_MS, bytes(32))
    signature = registry_key.sign(message)

    assert verify_signature(pem_of(registry_key), message, signature)
    assert not verify_signature(pem_of(Ed25519PrivateKey.generate()), message, signature)
    assert not verify_signature(pem_of(registry_key), tree_head_message(41, TIMESTAMP_MS,
                                                                        bytes(32)), signature)
    assert not verify_signature(pem_of(registry_key), message, flipped(signature, at=10))
    assert not verify_signature(pem_of(registry_key), message, signature[:-1])


def test_a_key_that_is_not_an_ed25519_public_key_is_refused(registry_key):
    with pytest.raises(ValueError):
        verify_signature(b"not a key", b"message", registry_key.sign(b"message"))


# --- Proof documents -----------------------------------------------------------------------


def stored_events(count: int) -> list[dict]:
    return [{"position": i + 1, "originator_id": str(uuid.UUID(int=i + 1)),
             "originator_version": 1, "topic": "ledger.domain.retirements:Retirement.Recorded",
             "state": json.dumps({"timestamp": f"2026-01-01T00:00:{i:02d}Z"}).encode()}
            for i in range(count)]


def event_leaf(event: dict) -> bytes:
    return leaf_hash(leaf_input(event["originator_id"], event["originator_version"],
                                event["topic"], event["state"]))


def signed_head(key: Ed25519PrivateKey, nodes: DictNodes, size: int,
                timestamp_ms: int = TIMESTAMP_MS) -> dict:
    root = merkle.root(nodes, size)
    return {"tree_size": size, "root_hash": root.hex(), "timestamp_ms": timestamp_ms,
            "timestamp": "2025-11-24T16:00:00.000Z",
            "signature": key.sign(tree_head_message(size, timestamp_ms, root)).hex(),
            "public_key": pem_of(key).decode()}


def inclusion_document(key: Ed25519PrivateKey, size: int = 40, index: int = 16) -> dict:
    events = stored_events(size)
    nodes = stored([event_leaf(event) for event in events])
    event = events[index]
    return {
        "kind": "kapok-inclusion-proof-v1",
        "event": {**event, "leaf_index": index, "state": base64.b64encode(event["state"]).decode(),
                  "decoded": {"event": "Retirement.Recorded", **json.loads(event["state"])}},
        "leaf_hash": event_leaf(event).hex(),
        "inclusion_proof": [hash_.hex() for hash_ in inclusion_proof(nodes, index, size)],
        "tree_head": signed_head(key, nodes, size),
    }


def consistency_document(key: Ed25519PrivateKey, size1: int = 17, size2: int = 40) -> dict:
    nodes = stored([event_leaf(event) for event in stored_events(size2)])
    return {"kind": "kapok-consistency-proof-v1",
            "first": signed_head(key, nodes, size1, TIMESTAMP_MS - 60_000),
            "second": signed_head(key, nodes, size2),
            "proof": [hash_.hex() for hash_ in consistency_proof(nodes, size1, size2)]}


def flip_state(document: dict) -> None:
    state = base64.b64decode(document["event"]["state"])
    document["event"]["state"] = base64.b64encode(flipped(state, at=3)).decode()


def resign_with_another_key(head: dict) -> None:
    impostor = Ed25519PrivateKey.generate()
    message = tree_head_message(head["tree_size"], head["timestamp_ms"],
                                bytes.fromhex(head["root_hash"]))
    head["signature"], head["public_key"] = impostor.sign(message).hex(), pem_of(impostor).decode()


def test_a_correct_inclusion_document_has_no_problems(registry_key):
    assert verify_proof_file(inclusion_document(registry_key), pem_of(registry_key)) == []


@pytest.mark.parametrize(
    "tamper, problem",
    [
        (flip_state, "not the hash of the event"),
        (lambda doc: doc["event"].update(topic="ledger.domain.issuance:Batch.Issued"), "not the hash"),
        (lambda doc: doc["event"].update(leaf_index=17), "does not place the event"),
        (lambda doc: doc["tree_head"].update(root_hash=bytes(32).hex()), "does not place"),
        (lambda doc: doc["tree_head"].update(tree_size=41), "signature"),
        (lambda doc: doc["tree_head"].update(signature=bytes(64).hex()), "signature"),
        # Whoever forges a head can embed a matching key: only the auditor's own key counts.
        (lambda doc: resign_with_another_key(doc["tree_head"]), "signature"),
        (lambda doc: doc["inclusion_proof"].pop(), "does not place"),
        (lambda doc: doc["event"].pop("topic"), "missing field event.topic"),
        (lambda doc: doc.pop("tree_head"), "missing field tree_head"),
        (lambda doc: doc["tree_head"].pop("signature"), "missing field tree_head.signature"),
        (lambda doc: doc.pop("leaf_hash"), "missing field leaf_hash"),
        (lambda doc: doc["event"].update(leaf_index="16"), "event.leaf_index is not of type int"),
        (lambda doc: doc["event"].update(state="%%%"), "not base64"),
        (lambda doc: doc["inclusion_proof"].append("zz"), "not a 32-byte hex hash"),
        (lambda doc: doc["tree_head"].update(signature="xyz"), "not hex"),
        (lambda doc: doc.update(kind="kapok-inclusion-proof-v2"), "unknown proof kind"),
        (lambda doc: doc["event"]["decoded"].update(beneficiary="Someone Else"),
         "event.decoded is not what the stored state says"),
    ],
)
def test_a_tampered_or_incomplete_inclusion_document_shows_its_problem(
    registry_key, tamper, problem
):
    document = inclusion_document(registry_key)
    tamper(document)

    problems = verify_proof_file(document, pem_of(registry_key))

    assert any(problem in found for found in problems), problems


@pytest.mark.parametrize("document", [[], "proof", None, {}])
def test_a_document_that_is_not_a_proof_object_is_a_problem_not_an_error(registry_key, document):
    assert verify_proof_file(document, pem_of(registry_key)) == ["missing field kind"]


def test_a_correct_consistency_document_has_no_problems(registry_key):
    assert verify_proof_file(consistency_document(registry_key), pem_of(registry_key)) == []


@pytest.mark.parametrize(
    "tamper, problem",
    [
        (lambda doc: doc["second"].update(root_hash=bytes(32).hex()), "does not show"),
        (lambda doc: doc["proof"].pop(0), "does not show"),
        (lambda doc: doc["first"].update(timestamp_ms=TIMESTAMP_MS), "first tree head"),
        (lambda doc: resign_with_another_key(doc["second"]), "second tree head"),
        (lambda doc: doc.pop("second"), "missing field second"),
        (lambda doc: doc["first"].update(tree_size=-1), "first.tree_size is out of range"),
    ],
)
def test_a_tampered_or_incomplete_consistency_document_shows_its_problem(
    registry_key, tamper, problem
):
    document = consistency_document(registry_key)
    tamper(document)

    problems = verify_proof_file(document, pem_of(registry_key))

    assert any(problem in found for found in problems), problems


# --- The command line, and running without Kapok ------------------------------------------


@pytest.fixture
def auditor_files(tmp_path, registry_key):
    """A proof, a tampered proof and the registry key, as an auditor receives them."""
    (tmp_path / "proof.json").write_text(json.dumps(inclusion_document(registry_key)))
    tampered = inclusion_document(registry_key)
    flip_state(tampered)
    (tmp_path / "tampered.json").write_text(json.dumps(tampered))
    (tmp_path / "key.pem").write_bytes(pem_of(registry_key))
    return tmp_path


def test_the_command_says_what_a_valid_proof_proves_and_exits_0(auditor_files, capsys):
    code = verifier.main([str(auditor_files / "proof.json"),
                          "--public-key", str(auditor_files / "key.pem")])

    assert code == 0
    assert capsys.readouterr().out == (
        "OK: the event ledger.domain.retirements:Retirement.Recorded of "
        "00000000-0000-0000-0000-000000000011 version 1 is leaf 16 of the "
        "ledger's tree of 40 events signed at 2025-11-24T16:00:00.000Z\n")


def test_the_command_lists_each_problem_on_stderr_and_exits_1(auditor_files, capsys):
    code = verifier.main([str(auditor_files / "tampered.json"),
                          "--public-key", str(auditor_files / "key.pem")])

    output = capsys.readouterr()
    assert code == 1
    assert output.out == ""
    # the fields shown are not the state's, the leaf hash is wrong, and so no inclusion
    assert len(output.err.splitlines()) == 3


@pytest.mark.parametrize(
    "prepare",
    [
        lambda files: (files / "proof.json").unlink(),
        lambda files: (files / "proof.json").write_text("{not json"),
        lambda files: (files / "key.pem").write_text("not a key"),
        lambda files: (files / "key.pem").unlink(),
    ],
)
def test_the_command_exits_2_when_a_file_cannot_be_read(auditor_files, prepare, capsys):
    prepare(auditor_files)

    code = verifier.main([str(auditor_files / "proof.json"),
                          "--public-key", str(auditor_files / "key.pem")])

    assert code == 2
    assert "cannot use the files" in capsys.readouterr().err


def test_the_verifier_imports_only_the_standard_library_and_cryptography():
    tree = ast.parse(Path(verifier.__file__).read_text(encoding="utf-8"))
    imported = {alias.name.partition(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.partition(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom)}

    assert imported - set(sys.stdlib_module_names) == {"cryptography"}


@pytest.mark.parametrize("proof, code", [("proof.json", 0), ("tampered.json", 1)])
def test_a_copy_of_the_verifier_runs_alone_as_a_script(auditor_files, proof, code):
    alone = auditor_files / "auditor"
    alone.mkdir()
    shutil.copy(verifier.__file__, alone / "verifier.py")
    for name in ("proof.json", "tampered.json", "key.pem"):
        shutil.move(auditor_files / name, alone / name)

    # -I: no PYTHON* variables, no user site, and not even the script's own folder on sys.path.
    run = subprocess.run([sys.executable, "-I", "verifier.py", proof, "--public-key", "key.pem"],
                         cwd=alone, capture_output=True, text=True, timeout=60, check=False)

    assert run.returncode == code, run.stderr
    assert run.stdout.startswith("OK: ") == (code == 0)


@given(st.text(max_size=40), st.integers(0, 10**9), st.text(max_size=60), st.binary(max_size=64))
def test_a_leafs_encoding_is_always_the_canonical_json_whatever_the_text(
        originator_id, version, topic, state):
    from ledger.audit.verifier import leaf_input

    canonical = json.dumps({"originator_id": originator_id, "originator_version": version,
                            "topic": topic, "state": base64.b64encode(state).decode()},
                           sort_keys=True, separators=(",", ":")).encode()
    assert leaf_input(originator_id, version, topic, state) == canonical
