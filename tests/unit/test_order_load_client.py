"""The order benchmark's load generator reads HTTP responses itself (testbed/order_client.py):
it must read them right, or it would count orders that were never made."""

from __future__ import annotations

import pytest

from testbed.order_client import parse_response


def test_a_response_with_a_content_length_gives_its_status_and_body():
    raw = (b"HTTP/1.1 201 CREATED\r\nServer: gunicorn\r\nContent-Type: application/json\r\n"
           b"Content-Length: 13\r\nConnection: close\r\n\r\n{\"state\": 1}\n")
    assert parse_response(raw) == (201, b"{\"state\": 1}\n")


def test_a_chunked_response_is_put_back_together():
    raw = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"5\r\n{\"a\":\r\n3;ext=1\r\n 1}\r\n0\r\n\r\n")
    assert parse_response(raw) == (200, b"{\"a\": 1}")


@pytest.mark.parametrize("raw", [
    b"",  # closed before answering
    b"garbage\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 10",  # the headers never ended
    b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}",  # the body was cut short
    b"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n{}",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n9\r\n{}",
])
def test_a_broken_response_counts_as_a_failed_connection(raw):
    with pytest.raises(OSError):
        parse_response(raw)
