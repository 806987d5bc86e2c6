"""Witnesses and a served log, for the tests of witnesses and of others' tools."""

from __future__ import annotations

import urllib.request

from market.application import Marketplace
from testbed.servers import Server, server_env


class Auditor:
    """A witness's key and state directory, and the command that runs one round of it."""

    def __init__(self, kapok, folder, name: str):
        self.kapok, self.name = kapok, name
        self.key, self.state = folder / "witness.key", folder / "state"
        folder.mkdir()
        code, out, err = kapok("audit", "witness-key", "--name", name, "--out", str(self.key))
        assert code == 0, err
        self.vkey = out.strip()

    def witness(self, log: Server):
        return self.kapok("audit", "witness", "--log", log.base, "--key", str(self.key),
                          "--state", str(self.state), "--once")

    def saved(self) -> dict[str, bytes]:
        return {path.name: path.read_bytes() for path in sorted(self.state.iterdir())}


def serve(tmp_path, database_url: str, name: str, witnesses) -> Server:
    """Kapok as deployed on ``database_url``, trusting the ``witnesses`` (Auditors)."""
    env = {**server_env(database_url),
           "KAPOK_WITNESS_KEYS": ",".join(auditor.vkey for auditor in witnesses)}
    return Server("web:create_app()", env, str(tmp_path), name, "/healthz")


def grow(database_url: str) -> None:
    """More events in the log: the registry's next issuance."""
    market = Marketplace(database=database_url)
    market.ledger.issue("VCS-1067", 2021, 100)
    market.close()


def fetch(server: Server, path: str) -> bytes:
    with urllib.request.urlopen(server.base + path, timeout=30) as response:
        return response.read()


def size_and_root(note: bytes) -> tuple[int, str]:
    _, size, root = note.decode().split("\n")[:3]
    return int(size), root
