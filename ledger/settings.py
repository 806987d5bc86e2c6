"""Where the event store lives: ``KAPOK_DATABASE_URL`` mapped onto eventsourcing's settings."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

DEFAULT_DATABASE_URL = "sqlite:///./var/kapok.db"
# eventsourcing's PostgreSQL factory with Kapok's bounds on its connections.
POSTGRES_FACTORY = "ledger.adapters.pg_store:Factory"
# Pooled connections per application and process: kept open, and opened beyond it under load
# (together twice the requests a web worker runs at once, see web/serving.py: a command that
# holds its turns' connection may read on another).
POOL_SIZE, MAX_OVERFLOW = "2", "6"


class DatabaseURLError(ValueError):
    pass


def database_url(environ: dict | None = None) -> str:
    environ = os.environ if environ is None else environ
    return environ.get("KAPOK_DATABASE_URL") or DEFAULT_DATABASE_URL


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


def persistence_env(url: str) -> dict[str, str]:
    """eventsourcing's environment for ``sqlite:///path`` or ``postgresql://user@host:port/db``.

    Raises DatabaseURLError for anything else. Creates the SQLite file's folder.
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
            "POSTGRES_CONNECT_TIMEOUT": os.environ.get("POSTGRES_CONNECT_TIMEOUT", "5"),
            # eventsourcing's own defaults (5, and 10 more under load) per application made
            # each web worker hold about a dozen connections.
            "POSTGRES_POOL_SIZE": os.environ.get("POSTGRES_POOL_SIZE", POOL_SIZE),
            "POSTGRES_MAX_OVERFLOW": os.environ.get("POSTGRES_MAX_OVERFLOW", MAX_OVERFLOW),
        }
    raise DatabaseURLError(
        f"unsupported database URL {url!r}: use sqlite:///path or postgresql://user@host/db"
    )


def is_postgres(env) -> bool:
    """Whether eventsourcing's settings ``env`` select Kapok's PostgreSQL store."""
    return env.get("PERSISTENCE_MODULE") == POSTGRES_FACTORY
