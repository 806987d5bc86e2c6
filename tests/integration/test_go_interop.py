"""Go's golang.org/x/mod/sumdb/note and sumdb/tlog (Debian's golang-golang-x-mod-dev), code
Kapok's authors did not write, check what a served Kapok publishes: the checkpoint with its
witness's cosignature, a retirement's inclusion proof, and a consistency proof from an older
checkpoint. A small Go program (tests/interop/tlogcheck) is built offline and run on them."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from market.application import Marketplace
from tests.conftest import unreachable
from tests.integration.command_line import in_process
from tests.integration.witnessing import Auditor, fetch, grow, serve

PROGRAM = Path(__file__).resolve().parents[1] / "interop" / "tlogcheck"
GOPATH = Path("/usr/share/gocode")  # where Debian's golang-*-dev packages put Go sources
NOTE = GOPATH / "src" / "golang.org" / "x" / "mod" / "sumdb" / "note"


@pytest.fixture(scope="session")
def tlogcheck(tmp_path_factory) -> Path:
    """The Go program, built with Debian's Go and x/mod sources alone (no network)."""
    if shutil.which("go") is None or not NOTE.is_dir():
        unreachable("Go or golang.org/x/mod is not installed (apt-get install golang-go "
                    "golang-golang-x-mod-dev; make test installs them)")
    folder = tmp_path_factory.mktemp("go")
    env = {**os.environ, "GO111MODULE": "off", "GOPATH": str(GOPATH), "GOPROXY": "off",
           "GOFLAGS": "", "GOCACHE": str(folder / "cache")}
    built = subprocess.run(["go", "build", "-o", str(folder / "tlogcheck"), "."], cwd=PROGRAM,
                           env=env, capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    return folder / "tlogcheck"


@pytest.fixture
def published(database_url, tmp_path, monkeypatch, capsys) -> dict[str, Path]:
    """What a served Kapok publishes, saved to files as a client would fetch them: the log's
    key, an old checkpoint, the latest one cosigned by a witness, a retirement's inclusion
    proof and the consistency proof between the two checkpoints."""
    kapok = in_process(monkeypatch, capsys, database_url,
                       KAPOK_SIGNING_KEY_FILE=str(tmp_path / "keys" / "signing.pem"))
    assert kapok("demo")[0] == 0
    old = tmp_path / "old.txt"
    assert kapok("audit", "checkpoint", "--output", str(old))[0] == 0
    grow(database_url)
    assert kapok("audit", "follow")[0] == 0
    auditor = Auditor(kapok, tmp_path / "auditor", "auditor.example/witness")
    market = Marketplace(database=database_url)
    retirement = market.ledger.view.retirements()[-1]["retirement_id"]
    market.close()
    server = serve(tmp_path, database_url, "kapok", [auditor])
    try:
        code, _, err = auditor.witness(server)
        assert code == 0, err
        files = {"vkey": fetch(server, "/audit/verifier-key"),
                 "checkpoint": fetch(server, "/audit/checkpoint.cosigned"),
                 "proof": fetch(server, f"/audit/proofs/{retirement}.json")}
        old_size = int(old.read_text().split("\n")[1])
        new_size = int(files["checkpoint"].decode().split("\n")[1])
        files["consistency"] = fetch(server, f"/audit/consistency?old={old_size}&new={new_size}")
    finally:
        server.stop()
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    paths = {name: tmp_path / name for name in files}
    paths["old"], paths["witness"] = old, auditor.vkey
    return paths


def run(tlogcheck: Path, published: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(tlogcheck), "-vkey", str(published["vkey"]), "-checkpoint",
         str(published["checkpoint"]), "-witness", published["witness"], "-proof",
         str(published["proof"]), "-old", str(published["old"]), "-consistency",
         str(published["consistency"])], capture_output=True, text=True, timeout=60)


def test_gos_note_and_tlog_verify_what_kapok_publishes(tlogcheck, published):
    checked = run(tlogcheck, published)

    assert checked.returncode == 0, checked.stderr
    proof = json.loads(published["proof"].read_text())
    size = proof["tree_head"]["tree_size"]
    old_size = int(published["old"].read_text().split("\n")[1])
    root = published["checkpoint"].read_text().split("\n")[2]
    assert checked.stdout.splitlines() == [
        f"checkpoint kapok.example/tambopata size {size} root {root}: signed by "
        "kapok.example/tambopata",
        checked.stdout.splitlines()[1],  # the witness's time, checked below
        f"leaf {proof['event']['leaf_index']} ({proof['event']['originator_id']} version "
        f"{proof['event']['originator_version']}) is in tree size {size}",
        f"tree size {old_size} (root {published['old'].read_text().split(chr(10))[2]}) is a "
        f"prefix of tree size {size}",
        "OK",
    ]
    assert checked.stdout.splitlines()[1].startswith("cosigned by auditor.example/witness at ")


def flip_base64(text: str, index: int = 0) -> str:
    """The same base64 with one byte changed, the first unless told."""
    data = bytearray(base64.b64decode(text))
    data[index] ^= 1
    return base64.b64encode(data).decode()


def edit_state(published):
    proof = json.loads(published["proof"].read_text())
    proof["event"]["state"] = flip_base64(proof["event"]["state"])
    published["proof"].write_text(json.dumps(proof))


def edit_root(published):
    lines = published["checkpoint"].read_text().split("\n")
    lines[2] = flip_base64(lines[2])
    published["checkpoint"].write_text("\n".join(lines))


def edit_cosignature(published):
    # The last byte of the witness's Ed25519 signature, on the note's last line.
    text, cosignature = published["checkpoint"].read_text().rsplit(" ", 1)
    published["checkpoint"].write_text(f"{text} {flip_base64(cosignature.strip(), -1)}\n")


def edit_consistency(published):
    document = json.loads(published["consistency"].read_text())
    document["proof"][0] = flip_base64(document["proof"][0])
    published["consistency"].write_text(json.dumps(document))


@pytest.mark.parametrize("tamper, failure", [
    (edit_state, "FAIL: tlog.CheckRecord of leaf"),
    (edit_root, "FAIL: {checkpoint}: note.Open: invalid signature for key kapok.example/"),
    (edit_cosignature, "FAIL: {checkpoint}: note.Open: invalid signature for key auditor.example/"),
    (edit_consistency, "FAIL: tlog.CheckTree from"),
])
def test_gos_tlog_refuses_what_was_tampered_with(tlogcheck, published, tamper, failure):
    tamper(published)

    checked = run(tlogcheck, published)

    assert checked.returncode == 1
    assert checked.stderr.startswith(failure.format(**published)), checked.stderr
    assert "OK" not in checked.stdout.splitlines()
