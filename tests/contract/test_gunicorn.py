"""What web/serving.py relies on in gunicorn beyond its documented settings and hooks: fails on
an upgrade that takes it away."""

from __future__ import annotations

import inspect
import socket

import pytest
from gunicorn.config import Config
from gunicorn.http.errors import LimitRequestLine
from gunicorn.http.parser import RequestParser
from gunicorn.workers.gthread import TConn, ThreadWorker

LONG_LINE = b"GET /api/v1/listings?x=" + b"a" * 5000 + b" HTTP/1.1\r\nHost: kapok\r\n\r\n"


def test_the_threaded_worker_handles_a_connection_and_an_error_in_the_methods_kapok_extends():
    assert "handle" in vars(ThreadWorker)
    assert list(inspect.signature(ThreadWorker.handle).parameters) == ["self", "conn"]
    assert list(inspect.signature(ThreadWorker.handle_error).parameters) == [
        "self", "req", "client", "addr", "exc"]


def test_a_threaded_connection_keeps_its_client_socket_as_sock():
    left, right = socket.socketpair()
    with left, right:
        connection = TConn(Config(), left, ("127.0.0.1", 40000), ("127.0.0.1", 8000))

        assert connection.sock is left


def test_a_request_line_past_the_bound_is_refused_as_limit_request_line():
    # The error KapokThreadWorker.handle_error answers in JSON under /api/.
    with pytest.raises(LimitRequestLine):
        next(RequestParser(Config(), iter([LONG_LINE]), ("127.0.0.1", 40000)))


def test_the_request_hooks_take_the_two_arguments_kapoks_hooks_have():
    config = Config()
    calls = []
    config.set("pre_request", lambda worker, req: calls.append(("pre", req)))
    config.set("post_request", lambda worker, req: calls.append(("post", req)))

    config.pre_request(None, "request")
    config.post_request(None, "request", {}, None)

    assert calls == [("pre", "request"), ("post", "request")]
