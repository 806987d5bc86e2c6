"""Fixtures for the Stripe adapter's tests: localstripe run as a separate process on loopback,
and a webhook endpoint on 127.0.0.1 that records what localstripe delivers to it.

localstripe is GPL, so it only ever runs in its own process. It keeps its state in
``/tmp/localstripe.pickle``; every test starts from ``DELETE /_config/data``.

localstripe 1.15.10 refuses a PaymentIntent's ``description`` and ``payment_method`` on
``/confirm``; the adapter therefore keeps the description in metadata and attaches the method
with an update before confirming, which real Stripe accepts too. localstripe runs unmodified.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from testbed.servers import free_port

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
STARTUP_SECONDS = 20
WEBHOOK_ID = "kapok-tests"  # registered again by each test, so it points at that test's endpoint

# localstripe exactly as published, bound to loopback (its own command binds every interface).
LAUNCHER = """
import sys

import aiohttp.web
from localstripe import server

aiohttp.web.run_app(server.app, host="127.0.0.1", port=int(sys.argv[1]), print=None)
"""


def _request(url: str, method: str = "GET", fields: list[tuple[str, str]] | None = None,
             timeout: float = 5) -> int:
    data = urllib.parse.urlencode(fields).encode() if fields is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    with urllib.request.urlopen(request, timeout=timeout) as response:
        response.read()
        return response.status


def _unavailable(message: str) -> None:
    # Locally a missing localstripe skips; in CI it must fail, never pass by skipping.
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


@dataclass(frozen=True)
class LocalStripe:
    """A running localstripe: its base URL for the SDK, and its configuration endpoints."""

    url: str

    def clear(self) -> None:
        _request(f"{self.url}/_config/data", method="DELETE")

    def send_webhooks_to(self, endpoint: str, secret: str, events: tuple[str, ...]) -> None:
        fields = [("url", endpoint), ("secret", secret)] + [("events[]", e) for e in events]
        _request(f"{self.url}/_config/webhooks/{WEBHOOK_ID}", method="POST", fields=fields)


@pytest.fixture(scope="session")
def localstripe_process(tmp_path_factory):
    """localstripe in its own process on 127.0.0.1 and a free port, for the whole session."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("localstripe") / "localstripe.log"
    with open(log_path, "wb") as log:
        try:
            process = subprocess.Popen([sys.executable, "-c", LAUNCHER, str(port)],
                                       stdout=log, stderr=subprocess.STDOUT)
        except OSError as error:
            _unavailable(f"localstripe could not be started: {error}")
        server = LocalStripe(f"http://127.0.0.1:{port}")
        try:
            deadline = time.monotonic() + STARTUP_SECONDS
            while True:
                if process.poll() is not None:
                    _unavailable(f"localstripe exited with {process.returncode}: "
                                 f"{log_path.read_text(errors='replace')[-2000:]}")
                try:
                    server.clear()
                    break
                except (urllib.error.URLError, ConnectionError, TimeoutError):
                    if time.monotonic() > deadline:
                        _unavailable(f"localstripe did not answer on port {port} within "
                                     f"{STARTUP_SECONDS} s")
                    time.sleep(0.1)
            yield server
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def localstripe(localstripe_process) -> LocalStripe:
    """The session's localstripe, emptied for this test."""
    localstripe_process.clear()
    return localstripe_process


@dataclass(frozen=True)
class Delivery:
    """One webhook request exactly as received: the raw body and its signature header."""

    body: bytes
    signature: str | None

    @property
    def event(self) -> dict:
        return json.loads(self.body)


class WebhookEndpoint:
    """Records every POST it receives; tests wait for the one they expect."""

    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []
        self._arrived = threading.Condition()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with endpoint._arrived:
                    endpoint.deliveries.append(Delivery(body, self.headers.get("Stripe-Signature")))
                    endpoint._arrived.notify_all()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format, *args) -> None:  # keep the test output quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/webhooks/stripe"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def wait_for(self, event_type: str, object_id: str, timeout: float = 5.0) -> Delivery:
        """The first delivery of ``event_type`` about ``object_id``; fails after ``timeout``
        seconds. Deliveries about other objects (a previous test's, say) are passed over."""

        def found() -> Delivery | None:
            for delivery in self.deliveries:
                event = delivery.event
                if event.get("type") == event_type and \
                        event.get("data", {}).get("object", {}).get("id") == object_id:
                    return delivery
            return None

        with self._arrived:
            if self._arrived.wait_for(found, timeout=timeout) is None:
                pytest.fail(f"no {event_type} webhook for {object_id} within {timeout} s; got "
                            f"{[d.event.get('type') for d in self.deliveries]}")
            return found()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def webhook_endpoint():
    endpoint = WebhookEndpoint()
    yield endpoint
    endpoint.close()
