"""Who may use Kapok: the identity application over its own store.

Event-sourced like the rest, but in a store of its own (``Identity``): password hashes and
token digests must never enter the audited ledger log that auditors export and the public
can prove against. No Flask here; the web layer asks this module who someone is.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from uuid import UUID, uuid4

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError
from eventsourcing.utils import get_topic

from identity.domain import (
    AlreadyRegisteredError,
    ApiToken,
    BUYER,
    Directory,
    EMAIL_PATTERN,
    IdentityError,
    LoginSession,
    MAX_REMEMBERED,
    Organisation,
    Person,
    ROLES,
    TOKEN_PREFIX,
    TokenIndex,
    TokenRecord,
    UnknownTokenError,
    UnknownUserError,
    User,
    check_identity_text,
    check_password,
    normal_email,
    organisation_id,
    slugify,
    token_id,
    token_index_id,
    user_id,
)
from ledger.adapters.moved_modules import register_moved_modules
from ledger.adapters.sql_recorders import creating_tables, schema_lock
from ledger.settings import persistence_env

_hasher = PasswordHasher()
# Verified against when the e-mail is unknown, so a login takes as long either way.
_DUMMY_HASH = _hasher.hash("kapok-no-such-user")


def identity_env(database_url: str) -> dict[str, str]:
    """The identity store beside the ledger's: its own table on PostgreSQL (eventsourcing
    names tables after the application), its own file on SQLite (where it does not)."""
    env = persistence_env(database_url)
    if env["PERSISTENCE_MODULE"] == "eventsourcing.sqlite":
        path = env["SQLITE_DBNAME"]
        if path.startswith("file::memory:"):
            env["SQLITE_DBNAME"] = "file:kapok-identity?mode=memory&cache=shared"
        else:
            file = Path(path)
            env["SQLITE_DBNAME"] = str(file.with_name(f"{file.stem}-identity{file.suffix}"))
    else:
        # A token's lookup and a sign-up are one short query each: fewer than the ledger's.
        env.update(POSTGRES_POOL_SIZE="1", POSTGRES_MAX_OVERFLOW="1")
    return env


class Identity(Application[UUID]):
    name = "Identity"

    def register_transcodings(self, transcoder) -> None:
        super().register_transcodings(transcoder)
        # Its events were written when its aggregates were in web/identity.py.
        register_moved_modules({"web.identity": "identity.domain"})

    def __init__(self, database_url: str, env: dict | None = None):
        env = {**identity_env(database_url), **(env or {})}
        # Tables are created one process at a time (gunicorn workers start together and
        # share eventsourcing's database function with the ledger's store).
        with schema_lock(env):
            creating_tables(lambda: super(Identity, self).__init__(env=env))
        # Who a token or a session's e-mail stands for, as of a position in the store: every
        # API request asks, and answering costs 3-4 reads, but one query says nothing changed
        # (a revocation or a deactivation in any process moves the position).
        self._seen: tuple[int, dict[tuple[str, str], Person | None]] = (-1, {})

    def sign_up(self, organisation_name: str, name: str, email: str, password: str) -> Person:
        """A new buyer organisation with its first user, in one save."""
        organisation_name = check_identity_text(organisation_name, "the organisation's name")
        slug = slugify(organisation_name)
        if not slug:
            raise IdentityError("the organisation's name needs letters or digits")
        if self._exists(organisation_id(slug)):
            raise AlreadyRegisteredError(
                f"an organisation called {organisation_name!r} is already registered; "
                "ask its users to invite you")
        organisation = Organisation(slug, organisation_name)
        return self._register(email, name, BUYER, password, organisation)

    def add_user(self, email: str, name: str, role: str, password: str,
                 organisation: str | None = None) -> Person:
        """An operator or auditor (no organisation), or another buyer of an organisation."""
        if role not in ROLES:
            raise IdentityError(f"unknown role {role!r}: one of {', '.join(ROLES)}")
        if role == BUYER:
            if not organisation or not self._exists(organisation_id(organisation)):
                raise IdentityError(f"unknown organisation {organisation!r}")
        else:
            organisation = None
        return self._register(email, name, role, password, None, organisation)

    def _register(self, email, name, role, password, new_org: Organisation | None,
                  organisation: str | None = None) -> Person:
        email = normal_email(check_identity_text(email, "the e-mail address"))
        if not EMAIL_PATTERN.fullmatch(email):
            raise IdentityError(f"{email!r} is not an e-mail address")
        name = check_identity_text(name, "the name")
        check_password(password)
        if self._exists(user_id(email)):
            raise AlreadyRegisteredError(f"{email} is already registered")
        slug = new_org.slug if new_org else organisation
        password_hash = _hasher.hash(password)
        for _attempt in range(10):
            user = User(email, name, role, slug, password_hash)
            directory = self._directory()
            changed = [user, TokenIndex(email, []), directory]
            if new_org is not None:
                new_org = Organisation(new_org.slug, new_org.name)
                directory.add_organisation(new_org.slug)
                changed.append(new_org)
            directory.add_user(email)
            try:
                self.save(*changed)
                break
            except IntegrityError:
                # Someone took the e-mail or the name first, or only the directory moved on.
                if self._exists(user_id(email)) or (
                        new_org is not None and self._exists(organisation_id(new_org.slug))):
                    raise AlreadyRegisteredError(
                        f"{email} or its organisation is already registered") from None
        else:
            raise IdentityError("too many sign-ups at once; please try again")
        return self.person(email)

    def authenticate(self, email: str, password: str) -> Person | None:
        """The person if the password is right, else None (same work either way)."""
        try:
            user = self.repository.get(user_id(email))
        except (AggregateNotFoundError, ValueError):
            user = None
        stored = user.password_hash if user is not None else _DUMMY_HASH
        try:
            _hasher.verify(stored, password or "")
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        if user is None or not user.active:
            return None
        if _hasher.check_needs_rehash(stored):
            user.change_password(_hasher.hash(password))
            self.save(user)
        return self.person(user.email)

    def change_password(self, email: str, password: str) -> None:
        """A new password; every session of the user ends with the old one."""
        check_password(password)
        user = self._user(email)
        user.change_password(_hasher.hash(password))
        user.end_sessions()
        self.save(user)

    def start_session(self, email: str) -> str:
        """A new log-in session of the user; its id goes in the browser's signed cookie."""
        user = self._user(email)
        session = LoginSession(uuid4(), user.email, user.session_generation)
        self.save(session)
        return str(session.id)

    def person_for_session(self, session_id: str, email: str) -> Person | None:
        """The active person whose session this is, or None once it ended (by log-out, by
        ending all the user's sessions, by a password change or deactivation)."""
        person = self._remembered("session", session_id, self._person_for_session)
        return person if person is not None and person.email == normal_email(email) else None

    def _person_for_session(self, session_id: str) -> Person | None:
        try:
            session = self.repository.get(UUID(session_id))
            user = self._user(session.email)
        except (AggregateNotFoundError, UnknownUserError, ValueError, AttributeError):
            return None
        if not isinstance(session, LoginSession) or session.ended \
                or session.generation != user.session_generation:
            return None
        return self._find(session.email)

    def end_session(self, session_id: str) -> None:
        """Ends one session (a log-out); an unknown or ended one is left as it is."""
        try:
            session = self.repository.get(UUID(str(session_id)))
        except (AggregateNotFoundError, ValueError):
            return
        if isinstance(session, LoginSession) and not session.ended:
            session.end()
            try:
                self.save(session)
            except IntegrityError:
                pass  # ending it is all that can happen to a session: it ended meanwhile

    def end_sessions_of(self, email: str) -> None:
        """Ends every session of the user, in every browser (API tokens are not sessions)."""
        for _attempt in range(10):
            user = self._user(email)
            user.end_sessions()
            try:
                self.save(user)
                return
            except IntegrityError:
                pass  # the user changed meanwhile (a log-in's rehash, a log-out): again
        raise IdentityError("too many changes to this user at once; please try again")

    def person(self, email: str) -> Person:
        user = self._user(email)
        org_name = self.organisation(user.organisation).name if user.organisation else None
        return Person(user.email, user.name, user.role, user.organisation, org_name)

    def find(self, email: str) -> Person | None:
        """The active person with this e-mail, or None (a session of a removed user)."""
        return self._remembered("email", email, self._find)

    def _find(self, email: str) -> Person | None:
        try:
            user = self._user(email)
        except UnknownUserError:
            return None
        return self.person(email) if user.active else None

    def organisation(self, slug: str) -> Organisation:
        try:
            return self.repository.get(organisation_id(slug))
        except AggregateNotFoundError:
            raise IdentityError(f"unknown organisation {slug!r}") from None

    def organisations(self) -> list[Organisation]:
        return [self.organisation(slug) for slug in self._directory().organisations]

    def people(self) -> list[Person]:
        return [self.person(email) for email in self._directory().users]

    def issue_token(self, email: str, label: str) -> str:
        """A new API token for the user; shown once, stored only as a digest."""
        user = self._user(email)
        label = check_identity_text(label, "the token's label")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        for _attempt in range(10):
            index = self._token_index(user.email)
            index.add(token_id(token))
            try:
                self.save(ApiToken(token_id(token), user.email, label), index)
                return token
            except IntegrityError:
                pass  # another token of the user's was issued at the same moment: add again
        raise IdentityError("too many tokens issued at once; please try again")

    def person_for_token(self, token: str) -> Person | None:
        if not token or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            return None
        return self._remembered("token", token, self._person_for_token)

    def _person_for_token(self, token: str) -> Person | None:
        try:
            record = self.repository.get(token_id(token))
        except AggregateNotFoundError:
            return None
        return None if record.revoked else self._find(record.email)

    def _remembered(self, kind: str, key: str, look_up) -> Person | None:
        position = self.recorder.max_notification_id() or 0
        seen_at, seen = self._seen
        if seen_at != position or len(seen) > MAX_REMEMBERED:
            seen = {}
            self._seen = (position, seen)
        if (kind, key) not in seen:
            seen[(kind, key)] = look_up(key)
        return seen[(kind, key)]

    def tokens_of(self, email: str) -> list[TokenRecord]:
        """The user's API tokens, newest first: those the user's index names, read alone."""
        token_ids = self._token_index(email).token_ids
        records = [self.repository.get(token_uuid) for token_uuid in reversed(token_ids)]
        return [TokenRecord(str(record.id), record.label, record.created_on, record.revoked)
                for record in records]

    def _token_index(self, email: str) -> TokenIndex:
        """The user's index; for a user registered before indexes were kept, a new one with
        what a scan finds, saved with their next token."""
        try:
            return self.repository.get(token_index_id(email))
        except AggregateNotFoundError:
            return TokenIndex(email, self._issued_to(email))

    def _issued_to(self, email: str) -> list[UUID]:
        """The ids of the user's tokens, in issue order, from every token's issue event."""
        email, topic, start, found = normal_email(email), get_topic(ApiToken.Issued), 1, []
        while True:
            page = self.recorder.select_notifications(start, 500, topics=[topic])
            found += [event.originator_id for event in map(self.mapper.to_domain_event, page)
                      if event.email == email]
            if len(page) < 500:
                return found
            start = page[-1].id + 1

    def revoke_token_of(self, email: str, token_id: str) -> None:
        """Revokes one of the user's own tokens by its id (the token is not kept). Raises
        UnknownTokenError for an unknown id or another user's token."""
        try:
            record = self.repository.get(UUID(str(token_id)))
        except (AggregateNotFoundError, ValueError):
            record = None
        if not isinstance(record, ApiToken) or record.email != normal_email(email):
            raise UnknownTokenError(f"unknown token {str(token_id)[:40]!r}")
        if not record.revoked:
            record.revoke()
            self.save(record)

    def revoke_token(self, token: str) -> None:
        try:
            record = self.repository.get(token_id(token))
        except AggregateNotFoundError:
            raise IdentityError("unknown token") from None
        record.revoke()
        self.save(record)

    def _user(self, email: str) -> User:
        try:
            return self.repository.get(user_id(email))
        except (AggregateNotFoundError, ValueError, AttributeError):
            raise UnknownUserError(f"unknown user {email!r}") from None

    def _exists(self, aggregate_id: UUID) -> bool:
        return aggregate_id in self.repository

    def _directory(self) -> Directory:
        try:
            return self.repository.get(Directory.create_id())
        except AggregateNotFoundError:
            return Directory()
