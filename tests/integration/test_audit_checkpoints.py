"""What an operator who holds the database and the signing key cannot do unseen: rewrite
signed history, sign two roots for one size, roll the log back, or slip an event in.

Each scenario seeds the demo (whose follower signs a checkpoint), lets an auditor save that
checkpoint, tampers as the intruder would with SQL, and runs ``kapok`` as the operator and
the auditor would, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import base64

import pytest

from ledger.audit.log import TRACKING_NAME
from tests.integration.command_line import in_process
from tests.integration.tampering import Intruder, position_of


@pytest.fixture
def kapok(database_url, tmp_path, monkeypatch, capsys):
    """Runs ``kapok ARGS...`` in-process on this test's store; returns (code, out, err)."""
    return in_process(monkeypatch, capsys, database_url,
                      KAPOK_SIGNING_KEY_FILE=str(tmp_path / "keys" / "signing.pem"))


@pytest.fixture
def saved(kapok, tmp_path):
    """The demo, logged and signed; the path of its checkpoint as an auditor saved it."""
    code, _, err = kapok("demo")
    assert code == 0, err
    path = tmp_path / "auditor" / "checkpoint.txt"
    path.parent.mkdir()
    code, _, err = kapok("audit", "checkpoint", "--output", str(path))
    assert code == 0, err
    return path


@pytest.fixture
def intruder(database_url, tmp_path, saved):
    intruder = Intruder(database_url, tmp_path)
    yield intruder
    intruder.close()


def size_and_root(checkpoint_file) -> tuple[int, str]:
    _, size, root = checkpoint_file.read_text().split("\n")[:3]
    return int(size), root


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


def test_an_untouched_log_verifies_against_the_saved_checkpoint(kapok, saved):
    size, _ = size_and_root(saved)

    code, out, err = kapok("audit", "verify", "--trusted-checkpoint", str(saved))

    assert code == 0, out + err
    assert out.strip().splitlines()[-1].startswith(f"OK: {size} events")
    assert "(1 trusted), latest checkpoint size" in out


def test_a_rewritten_tree_with_its_heads_deleted_fails_against_a_trusted_checkpoint(
        kapok, saved, intruder):
    # The intruder edits event 77, makes every Merkle node again from the edited events,
    # deletes the signed heads and checkpoints, and the published checkpoint file too.
    intruder.alter(77)
    intruder.rewrite_tree_and_delete_heads()
    intruder.published.unlink()
    size, _ = size_and_root(saved)

    code, out, err = kapok("audit", "verify", "--trusted-checkpoint", str(saved))

    assert code == 1
    assert (f"trusted_checkpoint: the events now stored do not give the root of the "
            f"checkpoint of size {size} (trusted {saved})") in out
    assert "the stored tree was rewritten with the events" in out
    assert err.startswith("kapok: error: verification failed")


def test_the_follower_refuses_a_second_root_for_a_published_size(kapok, saved, intruder):
    # The intruder edits event 77 and clears the audit tables; the ordinary follower
    # would log the store again from event 1 and sign a new root for the same size.
    intruder.alter(77)
    intruder.clear_audit_tables()
    size, published_root = size_and_root(saved)

    code, _, err = kapok("audit", "follow")

    assert code == 1
    assert f"tree size {size} was published with root {published_root}" in err
    assert f"give root {b64(intruder.root_now(size))} for that size" in err
    assert intruder.log.latest_checkpoint() is None  # nothing signed
    code, out, _ = kapok("audit", "verify", "--trusted-checkpoint", str(saved))
    assert code == 1
    assert (f"published_checkpoint: the events now stored do not give the root of the "
            f"checkpoint of size {size} (published in {intruder.published}, trusted {saved})"
            ) in out


def test_an_edited_event_is_named_as_the_first_leaf_that_differs(kapok, saved, intruder):
    intruder.alter(77)

    code, out, _ = kapok("audit", "verify", "--trusted-checkpoint", str(saved))

    assert code == 1
    assert "FAIL position 77: event_unchanged" in out
    assert "the first leaf that differs is leaf 76 (position 77, altered or moved)" in out


def test_a_log_rolled_back_is_refused_by_the_follower_and_fails_verify(kapok, saved, intruder):
    # The intruder deletes the last 20 events and the audit tables, then follows again.
    size, published_root = size_and_root(saved)
    for position in range(size - 19, size + 1):
        intruder.store.delete(position)
    intruder.clear_audit_tables()

    code, _, err = kapok("audit", "follow")

    assert code == 1
    assert (f"a checkpoint of tree size {size} (root {published_root}) was published in "
            f"{intruder.published}, but the store now holds only {size - 20} events") in err
    # Without the published file the follower signs the shorter log; the auditor's own
    # checkpoint still tells.
    intruder.published.unlink()
    assert kapok("audit", "follow")[0] == 0
    code, out, _ = kapok("audit", "verify", "--trusted-checkpoint", str(saved))
    assert code == 1
    assert (f"trusted_checkpoint: the checkpoint of size {size} (trusted {saved}) covers "
            f"{size} events but only {size - 20} are stored: the log was rolled back") in out


def test_verify_signs_nothing_and_names_an_event_inserted_by_sql(kapok, saved, intruder):
    size, _ = size_and_root(saved)
    notes = intruder.log.checkpoint_notes()
    # A listing's reservation stored again: the listing counts tonnes no escrow holds.
    forged = intruder.store.append_copy_as_next_version(
        position_of(intruder.app, "Listing.Reserved"))

    code, out, _ = kapok("audit", "verify")

    assert code == 1
    assert (f"positions {forged}-{forged} (1 events) are not covered by any signed "
            "checkpoint") in out
    assert "listing_counters" in out and "escrow accounts hold" in out
    assert intruder.log.checkpoint_notes() == notes and intruder.log.size() == size


def test_verify_fails_when_the_store_has_events_but_no_checkpoint(kapok, saved, intruder):
    intruder.clear_audit_tables()

    code, out, _ = kapok("audit", "verify", "--no-follow")  # the old flag is still accepted

    assert code == 1
    assert "but no signed checkpoint (run `kapok audit follow`)" in out


def test_a_trusted_checkpoint_of_another_key_is_refused(kapok, saved, tmp_path):
    forged = tmp_path / "forged.txt"
    text, signature = saved.read_text().split("\n\n")
    forged.write_text(text.replace("\n1", "\n2", 1) + "\n\n" + signature)

    code, _, err = kapok("audit", "verify", "--trusted-checkpoint", str(forged))

    assert code == 1
    assert err.startswith(f"kapok: error: trusted checkpoint {forged}:")


def test_verify_with_follow_signs_new_events_first(kapok, saved, intruder):
    size, _ = size_and_root(saved)
    intruder.app.ledger.issue("KAP-AF-01", 2021, 100)

    code, out, _ = kapok("audit", "verify", "--follow", "--trusted-checkpoint", str(saved))

    assert code == 0, out
    assert intruder.log.size() > size


def test_with_the_file_gone_the_databases_own_heads_still_refuse_a_second_root(
        kapok, saved, intruder):
    # Only the tree is cleared: the signed heads and checkpoints stay in the database.
    intruder.alter(77)
    intruder.sql(("DELETE FROM kapok_merkle_nodes", {}), ("DELETE FROM kapok_merkle_leaves", {}),
                 (f"DELETE FROM {intruder.log.recorder.tracking_table} "
                  "WHERE application_name = :name", {"name": TRACKING_NAME}))
    intruder.published.unlink()
    size, published_root = size_and_root(saved)

    code, _, err = kapok("audit", "follow")

    assert code == 1
    assert (f"tree size {size} was published with root {published_root} (in the database)"
            in err)


def test_a_head_signed_before_checkpoints_existed_gets_its_checkpoint(kapok, saved, intruder):
    size, root = size_and_root(saved)
    intruder.sql(("DELETE FROM kapok_checkpoints", {}))
    intruder.published.unlink()

    assert kapok("audit", "follow")[0] == 0

    assert intruder.log.latest_checkpoint() == saved.read_bytes()
    assert intruder.published.read_bytes() == saved.read_bytes() + b"\n"
