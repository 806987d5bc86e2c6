"""A witness: checks that a log only grows, and cosigns each checkpoint it has checked.

An auditor runs it on a host of their own (``kapok audit witness``). Each round it fetches the
log's latest checkpoint, verifies the log's signature with the key pinned in its state, and
checks, with a consistency proof from the log, that the tree extends the last checkpoint it
cosigned; then it records the new checkpoint and returns its cosignature to the log. A smaller
tree (a rollback), another root for the same size, or a tree the proof does not show to extend
the cosigned one (a fork) is refused with both sizes and roots, and the state stays as it was:
this witness never cosigns two views of one log.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import time
import urllib.error
import urllib.request
from pathlib import Path

from ledger.audit.checkpoint import Checkpoint, CheckpointError, NoteVerifier
from ledger.audit.cosignature import WitnessSigningKey
from ledger.audit.verifier import verify_consistency
from ledger.domain.errors import ConflictError, InvalidInputError, LedgerError, UpstreamError

RESPONSE_LIMIT = 1024 * 1024


class WitnessStateError(LedgerError, InvalidInputError):
    """The witness's state or options disagree (another log key pinned, a state unreadable)."""


class LogMisbehavedError(LedgerError, ConflictError):
    """The log showed a fork or a rollback of what this witness cosigned: never cosigned."""


class LogRefusedError(LedgerError, ConflictError):
    """The log answered a request with a refusal (4xx)."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


class LogUnreachableError(LedgerError, UpstreamError):
    """The log did not answer, or answered with a server error: try again later."""


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


class WitnessState:
    """The state directory: the log's verifier key (``log.vkey``), pinned at first contact,
    and the last checkpoint cosigned (``checkpoint``), each file replaced atomically."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)

    def log_key(self) -> str | None:
        return self._read("log.vkey")

    def pin_log_key(self, vkey: str) -> None:
        self._write("log.vkey", vkey.strip() + "\n")

    def cosigned(self, verifier: NoteVerifier) -> Checkpoint | None:
        """The last checkpoint cosigned, its log signature checked again."""
        note = self._read("checkpoint")
        if note is None:
            return None
        try:
            return Checkpoint.parse(note.encode(), verifier, origin=verifier.name)
        except CheckpointError as error:
            raise WitnessStateError(f"{self.directory / 'checkpoint'}: {error}") from None

    def record_cosigned(self, checkpoint: Checkpoint) -> None:
        self._write("checkpoint", checkpoint.text)

    def _read(self, name: str) -> str | None:
        try:
            return (self.directory / name).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as error:
            raise WitnessStateError(f"cannot read {self.directory / name}: {error}") from None

    def _write(self, name: str, text: str) -> None:
        """Written aside, flushed to disk and renamed over the old file: a crash leaves the
        old state or the new one, never half of one."""
        self.directory.mkdir(parents=True, exist_ok=True)
        draft = self.directory / f".{name}.{os.getpid()}"
        with open(draft, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(draft, self.directory / name)
        folder = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


class LogClient:
    """The log's public audit endpoints, over HTTP."""

    def __init__(self, base_url: str, timeout: float = 30):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def verifier_key(self) -> str:
        return self._request("/audit/verifier-key").decode().strip()

    def checkpoint(self) -> bytes | None:
        """The latest checkpoint, None while the log has none."""
        try:
            return self._request("/audit/checkpoint")
        except LogRefusedError as error:
            if error.status == 404:
                return None
            raise

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        body = self._request(f"/audit/consistency?old={old_size}&new={new_size}")
        try:
            return [base64.b64decode(node, validate=True) for node in json.loads(body)["proof"]]
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise LogMisbehavedError(f"the log's consistency proof from {old_size} to "
                                     f"{new_size} is not JSON with base64 hashes") from None

    def add_cosignature(self, note: bytes) -> None:
        self._request("/audit/cosignatures", note)

    def _request(self, path: str, data: bytes | None = None) -> bytes:
        request = urllib.request.Request(
            self.base_url + path, data=data, headers={"User-Agent": "kapok-witness",
                                                      "Content-Type": "text/plain"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.read(RESPONSE_LIMIT)
        except urllib.error.HTTPError as error:
            message = _message(error.read(RESPONSE_LIMIT))
            if error.code < 500:
                raise LogRefusedError(f"{self.base_url}{path} answered {error.code}: {message}",
                                      error.code) from None
            raise LogUnreachableError(f"{self.base_url}{path} answered {error.code}: "
                                      f"{message}") from None
        except (OSError, ValueError) as error:  # refused, timed out, no such host, bad URL
            raise LogUnreachableError(f"cannot reach {self.base_url}{path}: {error}") from None


def _message(body: bytes) -> str:
    try:
        return str(json.loads(body)["message"])
    except (ValueError, KeyError, TypeError):
        return body.decode("utf-8", "replace")[:200]


class Witness:
    def __init__(self, key: WitnessSigningKey, log: LogClient, state: WitnessState):
        self.key, self.log, self.state = key, log, state

    def log_verifier(self, given_vkey: str | None = None) -> NoteVerifier:
        """The log's key: the one pinned in the state, else ``given_vkey`` or, trusted on
        first use, the one the log publishes, pinned from now on. Raises WitnessStateError
        when a given key is not the pinned one."""
        pinned = self.state.log_key()
        if pinned is not None and given_vkey is not None and pinned != given_vkey.strip():
            raise WitnessStateError(f"{self.state.directory} witnesses the log of key {pinned}, "
                                    f"not {given_vkey.strip()}: use another state directory")
        vkey = pinned or given_vkey or self.log.verifier_key()
        verifier = NoteVerifier.parse(vkey)
        if pinned is None:
            self.state.pin_log_key(vkey)
        return verifier

    def witness(self, verifier: NoteVerifier, now=time.time) -> str:
        """One round: checks the log's latest checkpoint against the last cosigned, records
        and cosigns it, and returns the cosignature to the log; says what it did. Raises
        LogMisbehavedError (state untouched) for a fork or rollback."""
        cosigned = self.state.cosigned(verifier)
        note = self.log.checkpoint()
        if note is None:
            if cosigned is not None:
                raise LogMisbehavedError(
                    f"ROLLBACK: the log {verifier.name} serves no checkpoint, but this witness "
                    f"cosigned tree size {cosigned.tree_size} (root "
                    f"{_b64(cosigned.root_hash)}); not cosigning")
            return f"the log {verifier.name} has no checkpoint yet"
        try:
            checkpoint = Checkpoint.parse(note, verifier, origin=verifier.name)
        except CheckpointError as error:
            raise LogMisbehavedError(f"the log's checkpoint is not valid: {error}") from None
        if cosigned is not None:
            self._check_extends(cosigned, checkpoint)
        cosignature = self.key.cosign(note.split(b"\n\n", 1)[0] + b"\n", int(now()))
        self.state.record_cosigned(checkpoint)  # before the log may show the cosignature
        self.log.add_cosignature(checkpoint.note + cosignature.line.encode())
        return (f"cosigned {verifier.name} tree size {checkpoint.tree_size} root "
                f"{_b64(checkpoint.root_hash)} as {self.key.name}")

    def _check_extends(self, cosigned: Checkpoint, checkpoint: Checkpoint) -> None:
        old = f"tree size {cosigned.tree_size} (root {_b64(cosigned.root_hash)})"
        new = f"tree size {checkpoint.tree_size} (root {_b64(checkpoint.root_hash)})"
        if checkpoint.tree_size < cosigned.tree_size:
            raise LogMisbehavedError(
                f"ROLLBACK: the log now serves {new}, smaller than the {old} this witness "
                "cosigned; not cosigning")
        if checkpoint.tree_size == cosigned.tree_size:
            if checkpoint.root_hash != cosigned.root_hash:
                raise LogMisbehavedError(
                    f"FORK: the log now serves {new}, but this witness cosigned {old}: two "
                    "roots for one size; not cosigning")
            return
        try:
            proof = self.log.consistency_proof(cosigned.tree_size, checkpoint.tree_size)
        except LogRefusedError as error:
            raise LogMisbehavedError(
                f"FORK: the log proves no consistency from the {old} this witness cosigned to "
                f"{new} ({error}); not cosigning") from None
        if not verify_consistency(cosigned.tree_size, checkpoint.tree_size,
                                  cosigned.root_hash, checkpoint.root_hash, proof):
            raise LogMisbehavedError(
                f"FORK: the log's {new} does not extend the {old} this witness cosigned (its "
                "consistency proof fails); not cosigning")
