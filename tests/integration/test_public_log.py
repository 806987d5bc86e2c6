"""The log's public endpoints, as a client with no token checks them: old checkpoints by size,
inclusion proofs of any leaf against any signed size, entries with the bytes their leaves hash,
and C2SP tlog-tiles hash tiles, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import hashlib

import pytest

from ledger.audit.checkpoint import Checkpoint, NoteVerifier
from ledger.audit.keys import SigningKey
from ledger.audit.log import AuditLog
from ledger.audit.merkle import Frontier
from ledger.audit.verifier import verify_inclusion
from market.application import Marketplace
from tests.integration.command_line import in_process
from web import create_app


@pytest.fixture
def site(database_url, tmp_path, monkeypatch, capsys):
    """The demo with five retirements more, signed three events a page (so several
    checkpoints), served to a client without a token."""
    key_file = tmp_path / "keys" / "signing.pem"
    kapok = in_process(monkeypatch, capsys, database_url, KAPOK_SIGNING_KEY_FILE=str(key_file))
    assert kapok("demo")[0] == 0
    for number in range(5):
        code, _, err = kapok("ledger", "retire", "--account", "org-andes-coffee-roasters",
                             "--quantity", "1", "--beneficiary", f"Public log {number}",
                             "--reason", "Other")
        assert code == 0, err
    market = Marketplace(database=database_url)
    AuditLog(market).follow(SigningKey.load(key_file), page_size=3)
    market.close()
    app = create_app({"TESTING": True, "DATABASE_URL": database_url,
                      "SECRET_KEY": "test-secret-key"})
    yield app.test_client()
    app.extensions["kapok_market"].close()
    app.extensions["kapok_identity"].close()


def note_key(client) -> NoteVerifier:
    return NoteVerifier.parse(client.get("/audit/verifier-key").get_data(as_text=True))


def checkpoint(client, size: int) -> Checkpoint:
    response = client.get(f"/audit/checkpoints/{size}")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    return Checkpoint.parse(response.get_data(), note_key(client))


def signed_sizes(client) -> list[int]:
    sizes, url = [], "/audit/checkpoints?limit=2"
    while url:
        page = client.get(url).get_json()
        sizes, url = sizes + page["sizes"], page["next"]
    return sizes


def test_every_signed_size_is_listed_newest_first_and_served_as_signed(site):
    sizes = signed_sizes(site)
    latest = site.get("/audit/checkpoint").get_data()

    assert len(sizes) >= 3 and sizes == sorted(sizes, reverse=True)
    assert checkpoint(site, sizes[0]).note == latest
    assert [checkpoint(site, size).tree_size for size in sizes] == sizes


@pytest.mark.parametrize("size, code, message", [
    ("2", 404, "no checkpoint of size 2"),
    ("abc", 400, "size must be a whole number"),
    ("-1", 400, "size must be a whole number"),
    ("9" * 30, 400, "at most 18 digits"),
])
def test_a_size_never_signed_is_refused_with_a_message(site, size, code, message):
    response = site.get(f"/audit/checkpoints/{size}")
    assert response.status_code == code and message in response.get_json()["message"]


def test_an_old_leaf_proves_into_an_old_checkpoint_which_the_latest_extends(site):
    sizes = signed_sizes(site)
    old, latest = checkpoint(site, sizes[-1]), checkpoint(site, sizes[0])
    for index in (0, old.tree_size // 2, old.tree_size - 1):
        for tree in (old, latest):
            proof = site.get(f"/audit/inclusion?index={index}&size={tree.tree_size}").get_json()
            assert (proof["index"], proof["size"]) == (index, tree.tree_size)
            assert verify_inclusion(base64.b64decode(proof["leaf_hash"]), index, tree.tree_size,
                                    [base64.b64decode(h) for h in proof["proof"]],
                                    tree.root_hash)
    assert len(sizes) > 1 and latest.tree_size > old.tree_size


@pytest.mark.parametrize("query, code, message", [
    ("index=0", 400, "size is required"),
    ("index=x&size=3", 400, "index must be a whole number"),
    ("index=0&size=0", 404, "is not a tree the log has signed"),
    ("index=0&size=100000", 404, "is not a tree the log has signed"),
    ("index=7&size=7", 404, "there is no leaf 7 in the tree of 7"),
    ("index=0&size=99999999999999999999", 400, "at most 18 digits"),
])
def test_an_inclusion_out_of_the_signed_log_is_refused_with_a_message(site, query, code, message):
    response = site.get(f"/audit/inclusion?{query}")
    assert response.status_code == code and message in response.get_json()["message"]


def test_entries_carry_the_bytes_their_leaves_hash_up_to_the_latest_checkpoint(site):
    size = checkpoint(site, signed_sizes(site)[0]).tree_size
    entries, url = [], "/audit/entries?start=0&limit=1000"
    while url:
        page = site.get(url).get_json()
        entries, url = entries + page["entries"], page["next"] if page["entries"] else None

    assert [entry["index"] for entry in entries] == list(range(size))
    assert len(site.get("/audit/entries?start=0&limit=1000").get_json()["entries"]) == 100
    frontier = Frontier()
    for entry in entries:
        leaf = hashlib.sha256(b"\0" + base64.b64decode(entry["leaf_input"])).digest()
        assert base64.b64encode(leaf).decode() == entry["leaf_hash"]
        frontier.append(leaf)
    assert frontier.root() == checkpoint(site, size).root_hash
    assert site.get(f"/audit/entries?start={size}").get_json() == {"entries": [], "next": None}
    assert site.get("/audit/entries?start=-4").status_code == 400


def test_hash_tiles_give_the_leaves_of_the_latest_checkpoint(site):
    size = checkpoint(site, signed_sizes(site)[0]).tree_size
    assert size < 256  # the demo: one partial tile of leaf hashes

    tile = site.get(f"/audit/tile/0/000.p/{size}")

    assert tile.status_code == 200 and tile.mimetype == "application/octet-stream"
    assert "immutable" in tile.headers["Cache-Control"]
    frontier = Frontier()
    for index in range(size):
        frontier.append(tile.data[32 * index:32 * index + 32])
    assert len(tile.data) == 32 * size
    assert frontier.root() == checkpoint(site, size).root_hash
    assert site.get(f"/audit/tile/0/000.p/{size - 1}").data == tile.data[:-32]


@pytest.mark.parametrize("path, code, message", [
    ("0/000", 404, "not complete in the latest checkpoint"),
    ("0/000.p/255", 404, "not complete in the latest checkpoint"),
    ("1/000.p/1", 404, "not complete in the latest checkpoint"),
    ("0/000.p/256", 400, "a partial tile has 1 to 255 hashes"),
    ("0/000.p/0", 400, "is not a C2SP tlog-tiles path"),
    ("0/x000/000", 400, "is not a C2SP tlog-tiles path"),
    ("0/1", 400, "is not a C2SP tlog-tiles path"),
    ("64/000", 400, "is not a C2SP tlog-tiles path"),
    ("entries/000", 404, "entry bundles are not served"),
])
def test_a_tile_not_signed_or_not_a_tile_is_refused_with_a_message(site, path, code, message):
    response = site.get(f"/audit/tile/{path}")
    assert response.status_code == code and message in response.get_json()["message"]

