"""Witnesses: auditors' processes that cosign each checkpoint extending the last one they
cosigned, and refuse a fork or a rollback of the log, however it was made.

Kapok is served as deployed (gunicorn, testbed/servers.py) on SQLite and on PostgreSQL; each
witness is ``kapok audit witness --once`` with a key and state directory of its own, talking
to the log over HTTP as it would from another host.
"""

from __future__ import annotations

import base64
import hashlib
import os
import uuid

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ledger.audit.checkpoint import verifier_key
from ledger.audit.keys import SigningKey
from testbed.servers import free_port
from tests.conftest import POSTGRES_ADMIN_DSN
from tests.integration.command_line import in_process
from tests.integration.tampering import Intruder, position_of
from tests.integration.witnessing import Auditor, fetch, grow, serve, size_and_root


@pytest.fixture
def signing_key(tmp_path):
    return tmp_path / "keys" / "signing.pem"


@pytest.fixture
def kapok(database_url, signing_key, monkeypatch, capsys):
    """Runs ``kapok ARGS...`` in-process on this test's store; returns (code, out, err)."""
    return in_process(monkeypatch, capsys, database_url, KAPOK_SIGNING_KEY_FILE=str(signing_key))


@pytest.fixture
def auditors(kapok, tmp_path):
    return [Auditor(kapok, tmp_path / f"auditor{n}", f"auditor{n}.example/witness")
            for n in (1, 2)]


@pytest.fixture
def log(kapok, auditors, database_url, tmp_path):
    """The demo, logged and signed, served over HTTP to witnesses Kapok trusts."""
    code, _, err = kapok("demo")
    assert code == 0, err
    server = serve(tmp_path, database_url, "kapok", auditors)
    yield server
    server.stop()


@pytest.fixture
def intruder(database_url, tmp_path, log):
    intruder = Intruder(database_url, tmp_path)
    yield intruder
    intruder.close()


@pytest.fixture
def other_database_url(database_url, tmp_path):
    """A second, empty store of the same kind as this test's."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path}/forked.db"
        return
    name = f"kapok_witness_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_ADMIN_DSN, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN_DSN, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def witnessed_by(note: bytes, auditor: Auditor) -> int:
    """The timestamp of ``auditor``'s cosignature on ``note``, checked as
    c2sp.org/tlog-cosignature says (Ed25519 over cosignature/v1, the time and the text)."""
    text = note.decode().partition("\n\n")[0] + "\n"
    name, key_hash, encoded = auditor.vkey.split("+", 2)
    public = base64.b64decode(encoded)[1:]
    (blob,) = [base64.b64decode(line.split(" ")[2]) for line in note.decode().splitlines()
               if line.startswith(f"\u2014 {name} ")]
    assert blob[:4].hex() == key_hash == hashlib.sha256(
        name.encode() + b"\n\x04" + public).digest()[:4].hex()
    timestamp = int.from_bytes(blob[4:12], "big")
    Ed25519PublicKey.from_public_bytes(public).verify(
        blob[12:], f"cosignature/v1\ntime {timestamp}\n{text}".encode())
    return timestamp


def test_two_witnesses_cosign_the_log_and_one_shown_a_fork_refuses_it(
        kapok, auditors, log, database_url, other_database_url, tmp_path, monkeypatch, capsys):
    first, second = auditors
    size, root = size_and_root(fetch(log, "/audit/checkpoint"))

    # Both witnesses check the log's checkpoint and cosign it; Kapok serves both cosignatures.
    for auditor in auditors:
        code, out, err = auditor.witness(log)
        assert code == 0, err
        assert out.strip() == (f"cosigned kapok.example/tambopata tree size {size} root {root} "
                               f"as {auditor.name}")
    cosigned = fetch(log, "/audit/checkpoint.cosigned")
    assert cosigned.startswith(fetch(log, "/audit/checkpoint"))
    assert all(witnessed_by(cosigned, auditor) > 0 for auditor in auditors)

    # The operator serves the second witness another log under the same key: a store of its
    # own, seeded again (its own checkpoint file, so that its follower signs).
    published = os.environ["KAPOK_CHECKPOINT_LOG_FILE"]
    forked = in_process(monkeypatch, capsys, other_database_url,
                        KAPOK_CHECKPOINT_LOG_FILE=str(tmp_path / "fork.log"))
    assert forked("demo")[0] == 0
    kapok = in_process(monkeypatch, capsys, database_url, KAPOK_CHECKPOINT_LOG_FILE=published)
    fork = serve(tmp_path, other_database_url, "fork", auditors)
    try:
        fork_size, fork_root = size_and_root(fetch(fork, "/audit/checkpoint"))
        before = second.saved()

        code, _, err = second.witness(fork)

        assert code == 1
        assert err.startswith("kapok: error: FORK: ")
        assert f"tree size {fork_size} (root {fork_root})" in err
        assert f"this witness cosigned tree size {size} (root {root})" in err
        assert second.saved() == before
    finally:
        fork.stop()

    # The first witness, shown the real log, goes on cosigning it as it grows.
    grow(database_url)
    assert kapok("audit", "follow")[0] == 0
    grown_size, grown_root = size_and_root(fetch(log, "/audit/checkpoint"))
    code, out, err = first.witness(log)
    assert code == 0, err
    assert grown_size > size and f"tree size {grown_size} root {grown_root} " in out


# --- each way of rewriting signed history, caught by a witness that cosigned before it -------


def rewrite_the_tree_and_delete_the_heads(intruder, database_url):
    # Event 77 edited, every Merkle node made again from the edited events, the signed heads,
    # checkpoints and published file deleted; the log signs again once it grows.
    intruder.alter(77)
    intruder.rewrite_tree_and_delete_heads()
    intruder.published.unlink()
    grow(database_url)


def clear_the_audit_tables(intruder, database_url):
    # Event 77 edited and the log built again from event 1, without the published file.
    intruder.alter(77)
    intruder.clear_audit_tables()
    intruder.published.unlink()


def delete_the_last_events(intruder, database_url):
    size = intruder.log.size()
    for position in range(size - 19, size + 1):
        intruder.store.delete(position)
    intruder.clear_audit_tables()
    intruder.published.unlink()


def insert_an_event_by_sql(intruder, database_url):
    # A listing's reservation stored again with SQL and given position 77 among the signed
    # events (the event that was there moved to the end), and the log built again.
    forged = intruder.store.append_copy_as_next_version(
        position_of(intruder.app, "Listing.Reserved"))
    intruder.store.swap(77, forged)
    intruder.clear_audit_tables()
    intruder.published.unlink()


@pytest.mark.parametrize("tamper, refusal", [
    (rewrite_the_tree_and_delete_the_heads,
     "FORK: the log's {new} does not extend the {old} this witness cosigned"),
    (clear_the_audit_tables,
     "FORK: the log now serves {new}, but this witness cosigned {old}: two roots for one size"),
    (delete_the_last_events,
     "ROLLBACK: the log now serves {new}, smaller than the {old} this witness cosigned"),
    (insert_an_event_by_sql,
     "FORK: the log's {new} does not extend the {old} this witness cosigned"),
])
def test_a_witness_that_cosigned_refuses_the_log_once_signed_history_is_rewritten(
        auditors, log, intruder, signing_key, database_url, tamper, refusal):
    auditor = auditors[0]
    assert auditor.witness(log)[0] == 0
    old = "tree size {} (root {})".format(*size_and_root(fetch(log, "/audit/checkpoint")))
    saved = auditor.saved()

    tamper(intruder, database_url)
    # The intruder holds the signing key too, and signs the history now stored. (Its own
    # follower: `kapok audit follow` first catches the read model up, which events moved by
    # SQL upset.)
    intruder.log.follow(SigningKey.load(signing_key))
    new = "tree size {} (root {})".format(*size_and_root(fetch(log, "/audit/checkpoint")))
    assert new != old

    code, _, err = auditor.witness(log)

    assert code == 1
    assert err.startswith("kapok: error: " + refusal.format(new=new, old=old)), err
    assert err.rstrip().endswith("not cosigning")
    assert auditor.saved() == saved


def test_a_log_that_withdrew_its_checkpoints_is_refused_as_a_rollback(auditors, log, intruder):
    auditor = auditors[0]
    assert auditor.witness(log)[0] == 0
    size, root = size_and_root(fetch(log, "/audit/checkpoint"))
    saved = auditor.saved()
    # The tree made again from edited events, and no checkpoint signed since.
    intruder.alter(77)
    intruder.rewrite_tree_and_delete_heads()

    code, _, err = auditor.witness(log)

    assert code == 1
    assert err.startswith("kapok: error: ROLLBACK: the log kapok.example/tambopata serves no "
                          f"checkpoint, but this witness cosigned tree size {size} (root {root})")
    assert auditor.saved() == saved


# --- what a witness's operator may get wrong ---------------------------------------------------


def test_a_witness_refuses_a_log_key_other_than_the_one_it_pinned(auditors, log):
    auditor = auditors[0]
    assert auditor.witness(log)[0] == 0  # pins the key the log published at first contact
    given = verifier_key("kapok.example/tambopata",
                         SigningKey(Ed25519PrivateKey.generate()).public_pem)

    code, _, err = auditor.kapok("audit", "witness", "--log", log.base, "--key",
                                 str(auditor.key), "--state", str(auditor.state), "--once",
                                 "--log-key", given)

    assert code == 1
    assert f"witnesses the log of key {fetch(log, '/audit/verifier-key').decode().strip()}" in err


def test_a_checkpoint_not_signed_by_the_given_log_key_is_not_cosigned(kapok, auditors, log,
                                                                      tmp_path):
    stranger = SigningKey(Ed25519PrivateKey.generate())
    key_file = tmp_path / "log.vkey"
    key_file.write_text(verifier_key("kapok.example/tambopata", stranger.public_pem) + "\n")
    auditor = auditors[0]

    code, _, err = kapok("audit", "witness", "--log", log.base, "--key", str(auditor.key),
                         "--state", str(auditor.state), "--once", "--log-key", str(key_file))

    assert code == 1
    assert "the log's checkpoint is not valid" in err and "bears no signature of key" in err
    assert not (auditor.state / "checkpoint").exists()


def test_a_witness_the_log_does_not_trust_is_told_so(kapok, log, tmp_path):
    stranger = Auditor(kapok, tmp_path / "stranger", "stranger.example/witness")

    code, _, err = stranger.witness(log)

    assert code == 1
    assert "answered 403: the note bears no cosignature of a witness Kapok trusts" in err


def test_a_log_out_of_reach_is_a_failure_to_try_again(kapok, auditors):
    code, _, err = kapok("audit", "witness", "--log", f"http://127.0.0.1:{free_port()}",
                         "--key", str(auditors[0].key), "--state", str(auditors[0].state),
                         "--once")

    assert code == 3
    assert "kapok: error: cannot reach http://127.0.0.1:" in err
