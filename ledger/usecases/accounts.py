"""Opening and reading accounts."""

from __future__ import annotations

from ledger.domain.accounts import (ACCOUNT_KINDS, BUFFER_POOL, HOLDING, Account, account_id,
                                    check_account_name)
from ledger.domain.errors import DuplicateError, InvalidCommandError, UnknownAccountError
from ledger.domain.text import check_printable


class Accounts:
    """Use cases of a registry's accounts (needs ``self.store``)."""

    def open_account(self, name: str, kind: str = HOLDING, owner: str = "",
                     idempotency_key: str | None = None) -> dict:
        """Opens an account. Raises InvalidCommandError, DuplicateError."""
        check_account_name(name)
        check_printable("owner", owner)
        if name == BUFFER_POOL:
            raise InvalidCommandError(f"{BUFFER_POOL} is the registry's own buffer account")
        if kind not in ACCOUNT_KINDS:
            raise InvalidCommandError(
                f"invalid account kind {kind!r}: one of {', '.join(ACCOUNT_KINDS)}")

        def command():
            if self.store.exists(account_id(name)):
                raise DuplicateError(f"account {name} already exists")
            return [Account(name, kind, owner)], {"account": name, "kind": kind}

        fields = {"name": name, "kind": kind, "owner": owner}
        return self.store.run("open_account", fields, idempotency_key, command)

    def ensure_account(self, name: str, kind: str, owner: str = "") -> None:
        """Opens the account unless it exists (for seeding and system accounts)."""
        try:
            self.open_account(name, kind, owner)
        except DuplicateError:
            pass

    def get_account(self, name: str) -> Account:
        return self.store.get(account_id(name), UnknownAccountError, f"account {name}")
