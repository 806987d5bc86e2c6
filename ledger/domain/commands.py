"""Idempotency: the record of a command done under a client's key, saved with its effect."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import date, datetime
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ledger.domain.errors import IdempotencyConflictError, InvalidCommandError
from ledger.domain.ids import named_id

MAX_KEY_LENGTH = 200


def command_record_id(key: str) -> UUID:
    return named_id("command", key)


# Digests of this form carry this prefix; older records hold a bare digest of another form.
FINGERPRINT_SCHEME = "fields-1:"


def fingerprint(command: str, fields: dict) -> str:
    """A stable digest of what was asked, to tell a retry from a different command: the
    command's named fields, where a field left at None or at its dataclass default does not
    count, so that a new optional field leaves the digests of earlier commands as they were."""
    named = {name: canonical(value) for name, value in fields.items() if value is not None}
    text = json.dumps({"command": command, "fields": named}, sort_keys=True,
                      separators=(",", ":"), ensure_ascii=False)
    return FINGERPRINT_SCHEME + hashlib.sha256(text.encode()).hexdigest()


def canonical(value):
    """``value`` as plain JSON data, the same whatever its Python type's repr."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: canonical(getattr(value, field.name))
                for field in dataclasses.fields(value)
                if not _at_default(field, getattr(value, field.name))}
    if isinstance(value, dict):
        return {str(key): canonical(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [canonical(item) for item in value]
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (bool, int, str)) or value is None:
        return value
    return str(value)  # Decimal, UUID, enums: their exact text


def _at_default(field: dataclasses.Field, value) -> bool:
    if field.default is not dataclasses.MISSING:
        return value == field.default
    if field.default_factory is not dataclasses.MISSING:
        return value == field.default_factory()
    return False


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
        """The first result, if this is the same command again. Raises otherwise. A record
        from before named fields holds a digest of another form: only its command is known."""
        if not self.fingerprint.startswith(FINGERPRINT_SCHEME):
            same = command == self.command
        else:
            same = fingerprint_ == self.fingerprint
        if not same:
            raise IdempotencyConflictError(
                f"idempotency key {self.key!r} was already used for a different "
                f"{self.command} command"
            )
        return self.result
