"""The cosignatures Kapok accepts from its witnesses, kept beside the checkpoints they cosign.

A witness (``kapok audit witness``, run by an auditor elsewhere) posts a checkpoint with its
cosignature line. Kapok keeps the line only if the witness is one it is configured to trust
(``KAPOK_WITNESS_KEYS``), the line verifies, and the note's text is byte for byte a checkpoint
Kapok signed; it serves the checkpoint again with every such line after its own signature.
"""

from __future__ import annotations

import time

from ledger.adapters.sql_recorders import tables_recorder
from ledger.audit.checkpoint import CheckpointError, signature_lines, split_note
from ledger.audit.cosignature import Cosignature, CosignatureError, WitnessKey, cosignatures
from ledger.audit.log import AuditLog
from ledger.domain.errors import ConflictError, LedgerError

# How far ahead of this host's clock a witness's may run.
CLOCK_SKEW_SECONDS = 600

TABLES = [
    # One line per witness and tree size: the latest cosignature the witness sent for it.
    """CREATE TABLE IF NOT EXISTS kapok_cosignatures (
        tree_size BIGINT NOT NULL, witness TEXT NOT NULL, cosigned_at BIGINT NOT NULL,
        line TEXT NOT NULL, PRIMARY KEY (tree_size, witness))""",
]


class UntrustedWitnessError(CosignatureError):
    """A note that bears no cosignature of a witness Kapok is configured to trust."""


class NotKapoksCheckpointError(LedgerError, ConflictError):
    """A cosigned note whose text is not the checkpoint Kapok signed for its size."""


class Cosignatures:
    def __init__(self, log: AuditLog):
        self.log = log
        self.recorder = tables_recorder(log.app.store, "CosignaturesRecorder", TABLES)

    def accept(self, note: bytes,
               witnesses: tuple[WitnessKey, ...]) -> tuple[int, list[Cosignature]]:
        """Stores the cosignatures on ``note`` of the ``witnesses`` Kapok trusts; returns the
        checkpoint's tree size and those cosignatures. Raises CheckpointError for a malformed note, UnknownTreeHeadError when Kapok
        signed no checkpoint of its size, NotKapoksCheckpointError when it signed another,
        CosignatureError when a trusted witness's line does not verify, and
        UntrustedWitnessError when no line is a trusted witness's."""
        body, _ = split_note(note)
        lines = body.split("\n")
        if len(lines) < 3 or not lines[1].isascii() or not lines[1].isdigit():
            raise CheckpointError("not a checkpoint: origin, tree size and root hash lines")
        size = int(lines[1])
        signed, _ = split_note(self.log.checkpoint(size))
        if body != signed:
            raise NotKapoksCheckpointError(
                f"the note is not the checkpoint Kapok signed for tree size {size} (root "
                f"{signed.split(chr(10))[2]}): a witness cosigned another log's view")
        found = cosignatures(note, list(witnesses))
        latest = int(time.time()) + CLOCK_SKEW_SECONDS
        for cosignature in found:
            if cosignature.timestamp > latest:
                # Kept, it would outrank every later cosignature of the witness for this size.
                raise CosignatureError(
                    f"witness {cosignature.witness.name} dated its cosignature "
                    f"{cosignature.timestamp}, in the future: check the witness's clock")
        if not found:
            trusted = ", ".join(witness.name for witness in witnesses) or "none configured"
            raise UntrustedWitnessError(
                "the note bears no cosignature of a witness Kapok trusts (KAPOK_WITNESS_KEYS: "
                f"{trusted})")
        statements = [(
            "INSERT INTO kapok_cosignatures VALUES (:size, :witness, :at, :line) "
            "ON CONFLICT (tree_size, witness) DO UPDATE SET cosigned_at = excluded.cosigned_at, "
            "line = excluded.line WHERE excluded.cosigned_at > kapok_cosignatures.cosigned_at",
            {"size": size, "witness": cosignature.witness.vkey, "at": cosignature.timestamp,
             "line": cosignature.line}) for cosignature in found]
        with self.recorder.datastore.transaction(commit=True) as cursor:
            for sql, params in statements:
                cursor.execute(self.recorder.adapt(sql), params)
        return size, found

    def cosigned_checkpoint(self, witnesses: tuple[WitnessKey, ...]) -> bytes | None:
        """The largest checkpoint that bears a cosignature of the ``witnesses``, with each of
        theirs that still verifies on the checkpoint stored now; None if there is none."""
        trusted = {witness.vkey: witness for witness in witnesses}
        rows = self.recorder.query(
            "SELECT tree_size, witness, line FROM kapok_cosignatures "
            "ORDER BY tree_size DESC, witness", {})
        for size in dict.fromkeys(row["tree_size"] for row in rows):
            try:
                note = self.log.checkpoint(size)
            except LedgerError:
                continue  # its checkpoint is gone from the database
            text = (split_note(note)[0] + "\n").encode()
            lines = [row["line"] for row in rows if row["tree_size"] == size
                     and row["witness"] in trusted
                     and _verifies(trusted[row["witness"]], text, row["line"])]
            if lines:
                return note + "".join(lines).encode()
        return None


def _verifies(witness: WitnessKey, text: bytes, line: str) -> bool:
    try:
        (_, signed), = signature_lines(line)
        witness.cosignature(text, signed)
    except (CheckpointError, ValueError):
        return False
    return True

