"""What every benchmark shares: fresh stores, the machine's description, the JSON result."""

from __future__ import annotations

import json
import os
import platform
import uuid
from datetime import datetime, timezone
from pathlib import Path

ADMIN_DSN = "host=127.0.0.1 user=postgres dbname=postgres"


def new_store(kind: str, workdir: str) -> str:
    """A database URL for a new, empty store: a SQLite file, or a new PostgreSQL database."""
    if kind == "sqlite":
        return f"sqlite:///{workdir}/{uuid.uuid4().hex[:8]}.db"
    import psycopg

    name = f"kapok_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql://postgres@127.0.0.1:5432/{name}"


def drop_store(url: str) -> None:
    if url.startswith("postgresql"):
        import psycopg

        with psycopg.connect(ADMIN_DSN, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


def cpu_model() -> str:
    """The processor's name as Linux reports it (``/proc/cpuinfo``), or the platform's guess:
    runs on these shared machines are compared across hosts, which differ."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def run_facts() -> dict:
    return {
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cores, "
                   f"Python {platform.python_version()}",
        "cpu": cpu_model(),
        "load_average_at_start": os.getloadavg()[0],
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def write_json(path: str | None, summary: dict) -> None:
    if path:
        with open(path, "w") as file:
            json.dump(summary, file, indent=2)
