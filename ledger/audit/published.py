"""The checkpoint file: every checkpoint the log signs, appended outside the database.

Whoever can rewrite the database can clear the audit tables and sign again; they cannot take
back what was already written here (keep the file on another disk or host, or ship it off as
it grows). The follower appends each checkpoint before storing it and refuses to sign
anything this file contradicts; ``verify`` trusts what it holds.
"""

from __future__ import annotations

import os
from pathlib import Path

from ledger.audit.checkpoint import (
    Checkpoint,
    CheckpointError,
    NotSignedByKeyError,
    NoteVerifier,
    split_notes,
)
from ledger.settings import KAPOK_CHECKPOINT_LOG_FILE


_last_read: dict[str, tuple[tuple, list[Checkpoint]]] = {}  # path -> (version, checkpoints)


class CheckpointFile:
    """Signed checkpoint notes, one after another, each followed by a blank line."""

    def __init__(self, path: Path | None = None):
        self.path = Path(path) if path is not None else KAPOK_CHECKPOINT_LOG_FILE.read()

    def append(self, note: bytes) -> None:
        """Appends one note and waits for the disk: it counts as published once written."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(descriptor, note + b"\n")
            os.fsync(descriptor)
        finally:
            os.close(descriptor)

    def notes(self) -> list[bytes]:
        try:
            return split_notes(self.path.read_bytes())
        except FileNotFoundError:
            return []

    def checkpoints(self, public_pem: bytes) -> list[Checkpoint]:
        """The checkpoints in the file signed by this key (under whatever origin; the key
        name is the origin), oldest first. Notes of other keys are skipped; a note that
        claims this key with a bad signature raises CheckpointError."""
        try:
            status = self.path.stat()
        except FileNotFoundError:
            return []
        # A follower polling for new events reads the file each time: unchanged, it is
        # not parsed and its signatures are not checked again.
        version = (str(self.path.resolve()), status.st_size, status.st_mtime_ns, public_pem)
        if _last_read.get(version[0], (None,))[0] != version:
            _last_read[version[0]] = (version, self._read(public_pem))
        return list(_last_read[version[0]][1])

    def _read(self, public_pem: bytes) -> list[Checkpoint]:
        found = []
        for note in self.notes():
            origin = note.split(b"\n", 1)[0].decode("utf-8", "replace")
            try:
                verifier = NoteVerifier.of(origin, public_pem)
            except CheckpointError:
                continue  # not an origin Kapok could have signed under
            try:
                found.append(Checkpoint.parse(note, verifier))
            except NotSignedByKeyError:
                continue  # another key's checkpoint
            except CheckpointError as error:
                raise CheckpointError(f"{self.path}: {error}") from None
        return found

    def roots(self, public_pem: bytes) -> dict[int, tuple[bytes, str]]:
        """tree size -> (root, where) of every checkpoint this key published here."""
        roots: dict[int, tuple[bytes, str]] = {}
        for checkpoint in self.checkpoints(public_pem):
            known = roots.setdefault(checkpoint.tree_size, (checkpoint.root_hash, str(self.path)))
            if known[0] != checkpoint.root_hash:
                raise CheckpointError(
                    f"{self.path} holds two roots for tree size {checkpoint.tree_size}: the log "
                    "has equivocated")
        return roots
