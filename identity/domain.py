"""Who may use Kapok, as aggregates: organisations, their people, roles, API tokens and
login sessions, with the rules their names, e-mail addresses and passwords follow."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ledger.domain.errors import ConflictError, NotFoundError
from ledger.domain.ids import named_id
from ledger.domain.text import check_text

BUYER, OPERATOR, AUDITOR = "buyer", "operator", "auditor"
ROLES = (BUYER, OPERATOR, AUDITOR)
TOKEN_PREFIX = "kapok_"
MIN_PASSWORD = 10
MAX_TEXT = 120
MAX_REMEMBERED = 10_000  # people remembered per position of the store (see Identity._seen)

EMAIL_PATTERN = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


class IdentityError(Exception):
    """A request about people or organisations that cannot be carried out (a 4xx)."""


class AlreadyRegisteredError(IdentityError, ConflictError):
    pass


class UnknownUserError(IdentityError, NotFoundError):
    pass


class UnknownTokenError(IdentityError, NotFoundError):
    pass


def slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug[:40].strip("-")


def normal_email(email: str) -> str:
    return email.strip().lower()


def organisation_id(slug: str) -> UUID:
    return named_id("organisation", slug)


def user_id(email: str) -> UUID:
    return named_id("user", normal_email(email))


def token_id(token: str) -> UUID:
    return named_id("api-token", hashlib.sha256(token.encode()).hexdigest())


def token_index_id(email: str) -> UUID:
    return named_id("api-tokens-of", normal_email(email))


def holding_account(slug: str) -> str:
    """The ledger account where an organisation's credits are delivered."""
    return f"org-{slug}"


class Organisation(Aggregate):
    @staticmethod
    def create_id(slug: str, **_: object) -> UUID:
        return organisation_id(slug)

    @event("Registered")
    def __init__(self, slug: str, name: str):
        self.slug, self.name = slug, name

    @property
    def account(self) -> str:
        return holding_account(self.slug)


class User(Aggregate):
    @staticmethod
    def create_id(email: str, **_: object) -> UUID:
        return user_id(email)

    @event("Registered")
    def __init__(self, email: str, name: str, role: str, organisation: str | None,
                 password_hash: str):
        self.email, self.name, self.role = email, name, role
        self.organisation = organisation
        self.password_hash = password_hash
        self.active = True
        # Sessions started under an earlier generation are over (see LoginSession).
        self.session_generation = 0

    @event("PasswordChanged")
    def change_password(self, password_hash: str) -> None:
        self.password_hash = password_hash

    @event("SessionsEnded")
    def end_sessions(self) -> None:
        self.session_generation += 1

    @event("Deactivated")
    def deactivate(self) -> None:
        self.active = False


class ApiToken(Aggregate):
    """A machine client's bearer token; only its SHA-256 digest is stored."""

    @staticmethod
    def create_id(digest_id: UUID, **_: object) -> UUID:
        return digest_id

    @event("Issued")
    def __init__(self, digest_id: UUID, email: str, label: str):
        self.email, self.label, self.revoked = email, label, False

    @event("Revoked")
    def revoke(self) -> None:
        self.revoked = True


class LoginSession(Aggregate):
    """One browser's log-in: its signed cookie names this id, and the session lasts until
    it is ended here or its user ends all their sessions (a new generation). Every process
    reads it from the store, so a log-out in one holds in all."""

    @staticmethod
    def create_id(session_uuid: UUID, **_: object) -> UUID:
        return session_uuid

    @event("Started")
    def __init__(self, session_uuid: UUID, email: str, generation: int):
        self.email, self.generation, self.ended = email, generation, False

    @event("Ended")
    def end(self) -> None:
        self.ended = True


class TokenIndex(Aggregate):
    """One user's API token ids in issue order, so listing them reads that user's tokens
    only. Opened with the user, and saved with each token issued to them."""

    @staticmethod
    def create_id(email: str, **_: object) -> UUID:
        return token_index_id(email)

    @event("Opened")
    def __init__(self, email: str, token_ids: list[UUID]):
        self.email, self.token_ids = email, list(token_ids)

    @event("TokenAdded")
    def add(self, token_uuid: UUID) -> None:
        self.token_ids.append(token_uuid)


class Directory(Aggregate):
    """Every organisation and user, so operators can list them without a scan."""

    @staticmethod
    def create_id() -> UUID:
        return named_id("directory", "identity")

    @event("Opened")
    def __init__(self):
        self.organisations: list[str] = []
        self.users: list[str] = []

    @event("OrganisationAdded")
    def add_organisation(self, slug: str) -> None:
        self.organisations.append(slug)

    @event("UserAdded")
    def add_user(self, email: str) -> None:
        self.users.append(email)


@dataclass(frozen=True)
class Person:
    """What the web layer needs to know about a signed-in user."""

    email: str
    name: str
    role: str
    organisation: str | None
    organisation_name: str | None

    @property
    def account(self) -> str | None:
        return holding_account(self.organisation) if self.organisation else None


@dataclass(frozen=True)
class TokenRecord:
    """What may be shown of an API token once issued: never the token itself."""

    token_id: str
    label: str
    issued_at: datetime
    revoked: bool


def check_password(password: str) -> None:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise IdentityError(f"the password needs at least {MIN_PASSWORD} characters")
    if len(password) > 1024:
        raise IdentityError("the password is too long (1024 characters at most)")


def check_identity_text(value: object, what: str) -> str:
    """Names, e-mail addresses and labels are kept without surrounding blanks."""
    value = value.strip() if isinstance(value, str) else value
    return check_text(what, value, most=MAX_TEXT, error=IdentityError)
