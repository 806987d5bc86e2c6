"""Kapok served as deployed, for benchmarks and tests: gunicorn, its ``kapok worker``, ports."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A loopback port no one listens on now (another process may take it before we do)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_env(url: str) -> dict:
    """This process's environment for a served Kapok on the store at ``url``, with the
    offline payment provider whatever Stripe settings are about."""
    env = {name: value for name, value in os.environ.items()
           if not name.startswith("KAPOK_STRIPE_")}
    env.update(KAPOK_DATABASE_URL=url, KAPOK_SECRET_KEY="bench-secret-not-for-production",
               KAPOK_ENV="development")
    return env


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when its parent dies, even by SIGKILL (Linux)."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Server:
    """``gunicorn -w 2`` with Kapok's settings (``web.serving``) on a free loopback port, in a
    process group of its own; the code of ``root`` (another checkout, to compare two).
    Raises RuntimeError, with gunicorn's log, if it does not answer ``ready_path``."""

    def __init__(self, app: str, env: dict, workdir: str, name: str, ready_path: str,
                 root: Path = ROOT):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = open(Path(workdir) / f"{name}.log", "w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "python:web.serving", "-w", "2", "-b",
             f"127.0.0.1:{self.port}", app],
            cwd=root, env={**env, "PYTHONPATH": str(root)}, stdout=self.log,
            stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=_die_with_parent)
        try:
            self._wait(ready_path)
        except BaseException as error:
            self.stop()
            tail = Path(self.log.name).read_text()[-3000:]
            raise RuntimeError(f"{name}: {error}\n--- gunicorn's log:\n{tail}") from None

    def _wait(self, path: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited ({self.process.returncode})")
            try:
                with urllib.request.urlopen(self.base + path, timeout=5) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not answer {path} within {timeout} s")

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
            except ProcessLookupError:
                pass
        self.log.close()


def start_worker(env: dict, workdir: str, root: Path = ROOT,
                 name: str = "worker") -> subprocess.Popen:
    """``kapok worker`` beside the server, as the Procfile runs it (the code of ``root``):
    the read model's only writer, which every request that saved waits for."""
    with open(Path(workdir) / f"{name}.log", "w") as log:  # the child keeps its own copy
        return subprocess.Popen([sys.executable, "-m", command_line_module(root), "worker"],
                                cwd=root,
                                env={**env, "PYTHONPATH": str(root)}, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=_die_with_parent)


def command_line_module(root: Path) -> str:
    """The module that runs ``kapok`` in the checkout at ``root`` (``web.cli`` in checkouts
    from before the command line had a package of its own)."""
    return "cli" if (Path(root) / "cli" / "__main__.py").exists() else "web.cli"


def stop_worker(worker: subprocess.Popen) -> None:
    """Stops a worker's process group: SIGTERM, then SIGKILL after 15 seconds."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(worker.pid, signal.SIGTERM)
    try:
        worker.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(5)
