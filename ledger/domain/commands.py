"""Idempotency: the record of a command done under a client's key, saved with its effect."""

from __future__ import annotations

import hashlib
import json
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ledger.domain.errors import IdempotencyConflictError, InvalidCommandError
from ledger.domain.ids import named_id

MAX_KEY_LENGTH = 200


def command_record_id(key: str) -> UUID:
    return named_id("command", key)


def fingerprint(command: str, payload: dict) -> str:
    """A stable digest of what was asked, to tell a retry from a different command."""
    text = json.dumps({"command": command, **payload}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def check_key(key: str) -> None:
    if not key or len(key) > MAX_KEY_LENGTH:
        raise InvalidCommandError(f"idempotency keys are 1-{MAX_KEY_LENGTH} characters")


class CommandRecord(Aggregate):
    """Created in the same atomic save as the command's effect: a second save under the same
    key collides on this id in the event store, so the effect can never happen twice."""

    @staticmethod
    def create_id(key: str, **_: object) -> UUID:
        return command_record_id(key)

    @event("Done")
    def __init__(self, key: str, command: str, fingerprint: str, result: dict):
        self.key = key
        self.command = command
        self.fingerprint = fingerprint
        self.result = result

    def replay(self, command: str, fingerprint_: str) -> dict:
        """The first result, if this is the same command again. Raises otherwise."""
        if fingerprint_ != self.fingerprint:
            raise IdempotencyConflictError(
                f"idempotency key {self.key!r} was already used for a different "
                f"{self.command} command"
            )
        return self.result
