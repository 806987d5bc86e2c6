"""Kapok's settings: the one module that reads the process environment.

Each variable Kapok reads is declared here as a ``Setting``, with its type, its default and
what it means, and is checked when read: a value Kapok cannot use raises ``SettingError``
naming the variable and what it must be. The ledger is the lowest layer, so the market, the
web app and the command line read their settings here too. The README's configuration table
lists the same variables (``tests/unit/test_settings.py`` holds the two together).

eventsourcing also reads its own settings from the environment; those Kapok documents
(``POSTGRES_*``, ``AGGREGATE_CACHE_MAXSIZE``) are read and checked here and handed to it.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Generic, Mapping, TypeVar
from urllib.parse import unquote, urlsplit

T = TypeVar("T")

# eventsourcing's PostgreSQL factory with Kapok's bounds on its connections.
POSTGRES_FACTORY = "ledger.adapters.pg_store:Factory"


class SettingError(ValueError):
    """An environment variable whose value Kapok cannot use; the message names it."""


class DatabaseURLError(SettingError):
    pass


@dataclass(frozen=True)
class Setting(Generic[T]):
    """One environment variable: ``parse`` turns its text into a value, or raises ValueError
    saying what the text must be; unset or blank, it is ``default``."""

    name: str
    default: T
    parse: Callable[[str], T]
    doc: str

    def read(self, environ: Mapping[str, str] | None = None, *, default: T | None = None) -> T:
        """The value in ``environ`` (this process's environment unless given); unset or
        blank, the caller's ``default`` if given, else the setting's own. Raises
        SettingError if the value cannot be used."""
        text = (os.environ if environ is None else environ).get(self.name)
        if text is None or not text.strip():
            return self.default if default is None else default
        try:
            return self.parse(text)
        except ValueError as error:
            raise SettingError(f"{self.name} must be {error}, not {text.strip()[:40]!r}") from None


SETTINGS: dict[str, Setting] = {}


def setting(name: str, default: T, parse: Callable[[str], T], doc: str) -> Setting[T]:
    """Declares the variable ``name``, listed in SETTINGS."""
    SETTINGS[name] = declared = Setting(name, default, parse, doc)
    return declared


# --- what a value may be: each parser's ValueError completes "NAME must be ..." -----------


def text(value: str) -> str:
    return value


def path(value: str) -> Path:
    return Path(value.strip())


def whole(low: int, high: int | None = None) -> Callable[[str], int]:
    """Whole numbers from ``low`` (to ``high``), written in ASCII digits only."""
    allowed = f"a whole number from {low:,}" + (f" to {high:,}" if high is not None else "")

    def parse(value: str) -> int:
        value = value.strip()
        if not (value.isascii() and value.isdigit()) or int(value) < low or (
                high is not None and int(value) > high):
            raise ValueError(allowed)
        return int(value)

    return parse


def seconds(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not math.isfinite(number) or number < 0:
        raise ValueError("a number of seconds, 0 or more")
    return number


def one_of(*choices: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if value.strip() not in choices:
            raise ValueError(" or ".join(repr(choice) for choice in choices))
        return value.strip()

    return parse


def log_name(value: str) -> str:
    """A transparency log's origin: signed notes admit no space or '+' in a key name."""
    value = value.strip()
    if any(c.isspace() or c == "+" or ord(c) < 0x20 for c in value):
        raise ValueError("a name without spaces or '+', such as registry.example.org/log")
    return value


def witness_keys(value: str) -> tuple:
    """Witnesses' verifier keys (c2sp.org/tlog-cosignature), separated by commas or spaces."""
    from ledger.audit.cosignature import CosignatureError, WitnessKey

    try:
        return tuple(WitnessKey.parse(vkey) for vkey in re.split(r"[\s,]+", value.strip()))
    except CosignatureError as error:
        raise ValueError("witnesses' verifier keys, <name>+<key ID>+<base64(0x04 || key)>, "
                         f"separated by commas ({error})") from None


def address(*schemes: str, example: str = "") -> Callable[[str], str]:
    """A URL of one of ``schemes`` (any, if none is named) with a host; ``memory://``, the
    rate limits' store in this process, needs none."""
    allowed = example or "a URL starting " + " or ".join(f"{scheme}://" for scheme in schemes)

    def parse(value: str) -> str:
        scheme, separator, rest = value.strip().partition("://")
        if not separator or (schemes and scheme not in schemes) or not (
                rest or scheme == "memory"):
            raise ValueError(allowed)
        return value.strip()

    return parse


# --- the ledger's store ---------------------------------------------------------------------

KAPOK_DATABASE_URL = setting(
    "KAPOK_DATABASE_URL", "sqlite:///./var/kapok.db", text,
    "sqlite:///path/to/file.db or postgresql://user[:password]@host:port/db")
# Kapok's bounds on eventsourcing's PostgreSQL connections (ledger/adapters/pg_store.py). Those
# without a default here have one per reader: the web's are short (web/__init__.py).
POSTGRES_CONNECT_TIMEOUT = setting(
    "POSTGRES_CONNECT_TIMEOUT", None, whole(1),
    "whole seconds to wait for a new connection (libpq's, at least 2) and for a pooled one")
POSTGRES_POOL_TIMEOUT = setting(
    "POSTGRES_POOL_TIMEOUT", None, seconds,
    "seconds one attempt waits for a pooled connection (eventsourcing tries a read ten times)")
POSTGRES_STATEMENT_TIMEOUT = setting(
    "POSTGRES_STATEMENT_TIMEOUT", None, seconds,
    "seconds a statement may run (the server's statement_timeout; 0: no limit)")
POSTGRES_LOCK_TIMEOUT = setting(
    "POSTGRES_LOCK_TIMEOUT", None, whole(0),
    "whole seconds a statement waits for a lock (lock_timeout; 0: no limit)")
POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT = setting(
    "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT", None, whole(0),
    "whole seconds a session may sit idle inside a transaction (eventsourcing's default: 5)")
# Pooled connections per application and process: kept open, and opened beyond it under load
# (together twice the requests a web worker runs at once, see web/serving.py: a command that
# holds its turns' connection may read on another). eventsourcing's own defaults (5, and 10
# more under load) per application made each web worker hold about a dozen connections.
POSTGRES_POOL_SIZE = setting(
    "POSTGRES_POOL_SIZE", 2, whole(1), "connections each application keeps open per process")
POSTGRES_MAX_OVERFLOW = setting(
    "POSTGRES_MAX_OVERFLOW", 6, whole(0), "connections opened beyond the pool under load")
POSTGRES_APPLICATION_NAME = setting(
    "POSTGRES_APPLICATION_NAME", None, text,
    "which of Kapok's processes holds a connection, in pg_stat_activity")
AGGREGATE_CACHE_MAXSIZE = setting(
    "AGGREGATE_CACHE_MAXSIZE", 2000, whole(0),
    "aggregates kept in memory per process (0: no bound)")
KAPOK_SIGNING_KEY_FILE = setting(
    "KAPOK_SIGNING_KEY_FILE", Path("./var/keys/tree-signing-key.pem"), path,
    "the Ed25519 key that signs audit tree heads")
KAPOK_LOG_ORIGIN = setting(
    "KAPOK_LOG_ORIGIN", "kapok.example/tambopata", log_name,
    "the audit log's name in its checkpoints and the key name of their signatures (a "
    "schema-less URL, no spaces or '+')")
KAPOK_CHECKPOINT_LOG_FILE = setting(
    "KAPOK_CHECKPOINT_LOG_FILE", Path("./var/checkpoints.log"), path,
    "append-only file outside the database that receives every signed checkpoint")
KAPOK_WITNESS_KEYS = setting(
    "KAPOK_WITNESS_KEYS", (), witness_keys,
    "the witnesses whose cosignatures of checkpoints Kapok accepts (their verifier keys)")

# --- the market -----------------------------------------------------------------------------

KAPOK_REGISTRY_PENDING_DAYS = setting(
    "KAPOK_REGISTRY_PENDING_DAYS", 14, whole(0, 3650),
    "days a retirement may stay pending at Verra before reconciliation reports it")
KAPOK_REGISTRY_INBOX = setting(
    "KAPOK_REGISTRY_INBOX", None, path,
    "folder where the worker reconciles every Verra export dropped as VCS-<id>*.csv")
KAPOK_RESERVATION_MINUTES = setting(
    "KAPOK_RESERVATION_MINUTES", 30, whole(1, 24 * 60),
    "how long a new order holds its tonnes before it expires unpaid")
KAPOK_STRIPE_SECRET_KEY = setting(
    "KAPOK_STRIPE_SECRET_KEY", None, text, "Stripe's API key: payments by Stripe")
KAPOK_STRIPE_WEBHOOK_SECRET = setting(
    "KAPOK_STRIPE_WEBHOOK_SECRET", "", text, "signs Stripe's webhooks")
KAPOK_STRIPE_API_BASE = setting(
    "KAPOK_STRIPE_API_BASE", None, address("http", "https"),
    "where the Stripe SDK sends its requests (a local fake such as localstripe)")
KAPOK_OFFLINE_WEBHOOK_SECRET = setting(
    "KAPOK_OFFLINE_WEBHOOK_SECRET", None, text, "signs the offline test provider's webhooks")
KAPOK_OFFLINE_WEBHOOK_SECRET_FILE = setting(
    "KAPOK_OFFLINE_WEBHOOK_SECRET_FILE", Path("var/offline-webhook-secret"), path,
    "where the offline provider's random secret is kept (made on first use)")

# --- the web app and its server -------------------------------------------------------------

KAPOK_ENV = setting(
    "KAPOK_ENV", "production", one_of("production", "development"),
    "production (Secure cookies, real payments, shared limits required) or development")
KAPOK_SECRET_KEY = setting(
    "KAPOK_SECRET_KEY", None, text, "signs sessions and CSRF tokens")
KAPOK_SECRET_KEY_FILE = setting(
    "KAPOK_SECRET_KEY_FILE", Path("var/secret-key"), path,
    "where `kapok serve` keeps a session key of its own when KAPOK_SECRET_KEY is unset")
KAPOK_PUBLIC_URL = setting(
    "KAPOK_PUBLIC_URL", "", address("http", "https"),
    "the site's address printed in certificates' QR codes")
KAPOK_RATELIMIT_STORAGE_URI = setting(
    "KAPOK_RATELIMIT_STORAGE_URI", "",
    address(example="a storage URI such as redis://host:6379 or memory://"),
    "where the rate limits are counted, shared by every process")
KAPOK_RATELIMIT_KEY_PREFIX = setting(
    "KAPOK_RATELIMIT_KEY_PREFIX", "kapok", text, "prefix of the rate limits' keys")
KAPOK_LOGIN_ATTEMPTS_PER_MINUTE = setting(
    "KAPOK_LOGIN_ATTEMPTS_PER_MINUTE", 5, whole(1), "failed log-ins per e-mail per minute")
KAPOK_ADDRESS_ATTEMPTS_PER_MINUTE = setting(
    "KAPOK_ADDRESS_ATTEMPTS_PER_MINUTE", 20, whole(1),
    "log-ins, sign-ups and API tokens per client address per minute")
KAPOK_CARD_ATTEMPTS_PER_HOUR = setting(
    "KAPOK_CARD_ATTEMPTS_PER_HOUR", 10, whole(1), "cards an organisation may try per hour")
KAPOK_PROXIES = setting(
    "KAPOK_PROXIES", 0, whole(0), "proxies in front of Kapok that set X-Forwarded-For")
KAPOK_STRIPE_PUBLISHABLE_KEY = setting(
    "KAPOK_STRIPE_PUBLISHABLE_KEY", "", text, "with Stripe: the card form on the order page")
KAPOK_STRIPE_JS_URL = setting(
    "KAPOK_STRIPE_JS_URL", "https://js.stripe.com/v3/", address("http", "https"),
    "where the card form's Stripe.js comes from")
KAPOK_VIEW_WAIT_SECONDS = setting(
    "KAPOK_VIEW_WAIT_SECONDS", 5.0, seconds,
    "how long a request waits for the read model to show the writes it must show")
KAPOK_APP_SLOTS = setting(
    "KAPOK_APP_SLOTS", 4, whole(1), "requests one gunicorn worker runs the app for at once")


def database_url(environ: Mapping[str, str] | None = None) -> str:
    return KAPOK_DATABASE_URL.read(environ)


def child_environment(defaults: Mapping[str, str]) -> dict[str, str]:
    """This process's environment for a process it starts, with ``defaults`` for the
    variables left unset or blank."""
    return {**os.environ, **{name: value for name, value in defaults.items()
                             if not os.environ.get(name, "").strip()}}


def local_secret(path: str | Path) -> str:
    """A random secret kept in a file only its owner reads (made on first use), so every
    installation has its own and it survives a restart: never a constant in the source."""
    import secrets

    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written aside, then linked into place: processes starting together all read the
        # one secret that won, never a file half-written.
        draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        draft.touch(mode=0o600)
        try:
            draft.write_text(secrets.token_urlsafe(48))
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_text().strip()


def database_bounds(defaults: Mapping[Setting, int | float]) -> dict[str, str]:
    """eventsourcing's settings for these PostgreSQL bounds: each from the environment, else
    its default here. Raises SettingError for a value that is not a number of seconds."""
    return {bound.name: str(bound.read(default=value)) for bound, value in defaults.items()}


# Read only when set: unset, pg_store's or eventsourcing's own default holds.
POSTGRES_WHEN_SET = (POSTGRES_POOL_TIMEOUT, POSTGRES_STATEMENT_TIMEOUT, POSTGRES_LOCK_TIMEOUT,
                     POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT, POSTGRES_APPLICATION_NAME)


def persistence_env(url: str) -> dict[str, str]:
    """eventsourcing's environment for ``sqlite:///path`` or ``postgresql://user@host:port/db``.

    Raises DatabaseURLError for anything else, SettingError for a PostgreSQL setting Kapok
    cannot use. Creates the SQLite file's folder.
    """
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        path = unquote(url[len("sqlite:///"):]) if url.startswith("sqlite:///") else ""
        if not path:
            raise DatabaseURLError(f"invalid SQLite URL {url!r}: use sqlite:///path/to/file.db")
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        else:
            path = "file::memory:?cache=shared"
        return {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": path,
                # eventsourcing's, able to subscribe (by polling) for the projection runner.
                "APPLICATION_RECORDER_TOPIC": "ledger.adapters.sqlite_recorder:KapokSQLiteRecorder"}
    if parts.scheme in ("postgresql", "postgres"):
        dbname = parts.path.lstrip("/")
        if not dbname or not parts.hostname:
            raise DatabaseURLError(
                f"invalid PostgreSQL URL {url!r}: use postgresql://user[:password]@host:port/db"
            )
        return {
            "PERSISTENCE_MODULE": POSTGRES_FACTORY,
            # eventsourcing's recorder, saving in one statement (see ledger/adapters/pg_recorder.py).
            "APPLICATION_RECORDER_TOPIC": "ledger.adapters.pg_recorder:KapokPostgresRecorder",
            "POSTGRES_DBNAME": unquote(dbname),
            "POSTGRES_HOST": parts.hostname,
            "POSTGRES_PORT": str(parts.port or 5432),
            "POSTGRES_USER": unquote(parts.username or "postgres"),
            # eventsourcing requires a password setting; trust auth ignores it.
            "POSTGRES_PASSWORD": unquote(parts.password or ""),
            # Fail fast with a clear message rather than hang when the server is away.
            **database_bounds({POSTGRES_CONNECT_TIMEOUT: 5}),
            "POSTGRES_POOL_SIZE": str(POSTGRES_POOL_SIZE.read()),
            "POSTGRES_MAX_OVERFLOW": str(POSTGRES_MAX_OVERFLOW.read()),
            **{bound.name: str(value) for bound in POSTGRES_WHEN_SET
               if (value := bound.read()) is not None},
        }
    raise DatabaseURLError(
        f"unsupported database URL {url!r}: use sqlite:///path or postgresql://user@host/db"
    )


def is_postgres(env) -> bool:
    """Whether eventsourcing's settings ``env`` select Kapok's PostgreSQL store."""
    return env.get("PERSISTENCE_MODULE") == POSTGRES_FACTORY
