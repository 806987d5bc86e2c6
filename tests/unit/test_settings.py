"""Kapok's settings: read from the environment in one module only, each checked, each in the
README's configuration table."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from ledger import settings
from ledger.settings import SETTINGS, SettingError

ROOT = Path(__file__).resolve().parents[2]
# Kapok's own packages; testbed/ (like bench/) builds its child processes' environments.
PACKAGES = ["ledger", "market", "web", "cli", "identity", "documents"]
SETTINGS_MODULE = "ledger/settings.py"
ENVIRONMENT = {"environ", "environb", "getenv", "getenvb", "putenv", "unsetenv"}


def environment_reads(source: str) -> list[tuple[int, str]]:
    """(line, name) of every use of ``os.environ``, ``os.getenv`` and their kin."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if (isinstance(node, ast.Attribute) and node.attr in ENVIRONMENT
                and isinstance(node.value, ast.Name) and node.value.id == "os"):
            found.append((node.lineno, f"os.{node.attr}"))
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            found += [(node.lineno, f"os.{alias.name}") for alias in node.names
                      if alias.name in ENVIRONMENT]
    return found


def test_only_the_settings_module_reads_the_environment():
    found = [f"{path.relative_to(ROOT).as_posix()}:{line} uses {name}"
             for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))
             if path.relative_to(ROOT).as_posix() != SETTINGS_MODULE
             for line, name in environment_reads(path.read_text(encoding="utf-8"))]

    assert not found, f"read settings through {SETTINGS_MODULE}:\n" + "\n".join(found)


@pytest.mark.parametrize("source, names", [
    ("import os\nos.environ.get('X')", ["os.environ"]),
    ("import os\nos.getenv('X')", ["os.getenv"]),
    ("import os\nos.environ['X'] = '1'", ["os.environ"]),
    ("from os import environ, path", ["os.environ"]),
    ("def later():\n    from os import getenv", ["os.getenv"]),
    ("import os\nos.path.join('a', 'b')", []),
])
def test_the_rule_finds_every_way_of_reading_the_environment(source, names):
    assert [name for _, name in environment_reads(source)] == names


def readme_table_names() -> set[str]:
    """The variables named in the first column of the README's configuration table."""
    names = set()
    for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines():
        if line.startswith("| `"):
            names.update(re.findall(r"`([A-Z][A-Z0-9_]+)`", line.split("|")[1]))
    return names


def test_the_readme_lists_every_setting_and_no_other():
    assert readme_table_names() == set(SETTINGS)


def test_each_setting_is_declared_under_its_own_name():
    assert all(getattr(settings, name) is setting for name, setting in SETTINGS.items())


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_an_unset_or_blank_setting_takes_its_default(name):
    setting = SETTINGS[name]

    assert setting.read({}) == setting.default
    assert setting.read({name: "  "}) == setting.default


def test_a_reader_may_give_its_own_default_for_an_unset_setting():
    timeout = settings.POSTGRES_STATEMENT_TIMEOUT

    assert timeout.read({}, default=5) == 5
    assert timeout.read({timeout.name: "2.5"}, default=5) == 2.5


@pytest.mark.parametrize("name, text, value", [
    ("KAPOK_APP_SLOTS", " 8 ", 8),
    ("KAPOK_PROXIES", "0", 0),
    ("KAPOK_VIEW_WAIT_SECONDS", "0.5", 0.5),
    ("KAPOK_ENV", "development", "development"),
    ("KAPOK_RATELIMIT_STORAGE_URI", "redis://:secret@cache:6379/2", "redis://:secret@cache:6379/2"),
    ("KAPOK_RATELIMIT_STORAGE_URI", "memory://", "memory://"),
    ("KAPOK_SIGNING_KEY_FILE", "/keys/heads.pem", Path("/keys/heads.pem")),
    ("KAPOK_LOG_ORIGIN", " registry.example.org/audit ", "registry.example.org/audit"),
    ("KAPOK_CHECKPOINT_LOG_FILE", "/srv/log/checkpoints", Path("/srv/log/checkpoints")),
    ("POSTGRES_POOL_SIZE", "3", 3),
    ("AGGREGATE_CACHE_MAXSIZE", "0", 0),
])
def test_a_setting_reads_its_value_as_its_type(name, text, value):
    assert SETTINGS[name].read({name: text}) == value


@pytest.mark.parametrize("name, text", [
    ("KAPOK_APP_SLOTS", "0"),
    ("KAPOK_APP_SLOTS", "four"),
    ("KAPOK_LOGIN_ATTEMPTS_PER_MINUTE", "-1"),
    ("KAPOK_PROXIES", "1.5"),
    ("KAPOK_VIEW_WAIT_SECONDS", "soon"),
    ("KAPOK_VIEW_WAIT_SECONDS", "nan"),
    ("KAPOK_ENV", "staging"),
    ("KAPOK_PUBLIC_URL", "kapok.example"),
    ("KAPOK_LOG_ORIGIN", "kapok registry"),
    ("KAPOK_LOG_ORIGIN", "kapok+registry"),
    ("KAPOK_STRIPE_JS_URL", "ftp://js.example/v3/"),
    ("KAPOK_RATELIMIT_STORAGE_URI", "localhost:6379"),
    ("POSTGRES_POOL_SIZE", "0"),
    ("POSTGRES_CONNECT_TIMEOUT", "1.5"),
    ("POSTGRES_STATEMENT_TIMEOUT", "-1"),
    ("AGGREGATE_CACHE_MAXSIZE", "2k"),
    ("KAPOK_WITNESS_KEYS", "auditor.example/w+00000000+AAAA"),
])
def test_a_value_kapok_cannot_use_is_refused_naming_the_variable(name, text):
    with pytest.raises(SettingError, match=f"^{name} must be .*, not '{re.escape(text)}'$"):
        SETTINGS[name].read({name: text})


def test_witness_keys_are_read_as_verifier_keys_separated_by_commas():
    from ledger.audit.cosignature import WitnessSigningKey

    keys = [WitnessSigningKey.generate(f"auditor{n}.example/w").verifier for n in range(2)]
    text = f" {keys[0].vkey},\n{keys[1].vkey} "

    assert settings.KAPOK_WITNESS_KEYS.read({"KAPOK_WITNESS_KEYS": text}) == tuple(keys)


def test_a_bad_postgres_setting_is_refused_before_any_connection(monkeypatch):
    monkeypatch.setenv("POSTGRES_LOCK_TIMEOUT", "5s")

    with pytest.raises(SettingError, match="POSTGRES_LOCK_TIMEOUT must be a whole number"):
        settings.persistence_env("postgresql://postgres@127.0.0.1:5432/kapok")


def test_postgres_settings_set_in_the_environment_reach_eventsourcing(monkeypatch):
    monkeypatch.setenv("POSTGRES_STATEMENT_TIMEOUT", "2.5")
    monkeypatch.setenv("POSTGRES_POOL_SIZE", "3")
    monkeypatch.delenv("POSTGRES_CONNECT_TIMEOUT", raising=False)
    monkeypatch.delenv("POSTGRES_LOCK_TIMEOUT", raising=False)

    env = settings.persistence_env("postgresql://postgres@127.0.0.1:5432/kapok")

    assert env["POSTGRES_STATEMENT_TIMEOUT"] == "2.5"
    assert (env["POSTGRES_POOL_SIZE"], env["POSTGRES_MAX_OVERFLOW"]) == ("3", "6")
    assert env["POSTGRES_CONNECT_TIMEOUT"] == "5"
    assert "POSTGRES_LOCK_TIMEOUT" not in env  # eventsourcing's own default holds


def test_a_child_process_gets_the_defaults_only_for_what_is_unset(monkeypatch):
    monkeypatch.setenv("KAPOK_ENV", "production")
    monkeypatch.setenv("KAPOK_SECRET_KEY", " ")
    monkeypatch.delenv("KAPOK_DATABASE_URL", raising=False)

    env = settings.child_environment({"KAPOK_ENV": "development", "KAPOK_SECRET_KEY": "local",
                                      "KAPOK_DATABASE_URL": "sqlite:///x.db"})

    assert (env["KAPOK_ENV"], env["KAPOK_SECRET_KEY"], env["KAPOK_DATABASE_URL"]) == (
        "production", "local", "sqlite:///x.db")
