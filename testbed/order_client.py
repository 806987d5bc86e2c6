"""The order flow's HTTP client side: a response read off a plain socket and parsed.

``http.client`` parses every response's headers with the e-mail package, CPU that a load
generator would take from the server it measures; this reads the status, the framing and
the body only.
"""

from __future__ import annotations

import socket


def read_all(connection: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    parts = []
    while chunk := connection.recv(65536):
        parts.append(chunk)
    return b"".join(parts)


def parse_response(raw: bytes) -> tuple[int, bytes]:
    """The status and body of one HTTP/1.1 response read to the connection's end (a body
    with a Content-Length, or chunked). A malformed one raises OSError, as a broken
    connection would."""
    head, separator, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    try:
        status = int(lines[0].split(b" ", 2)[1])
    except (IndexError, ValueError):
        raise OSError(f"not an HTTP response: {raw[:60]!r}") from None
    if not separator:
        raise OSError("the connection closed before the response's headers ended")
    headers = {name.strip().lower(): value.strip() for name, _, value in
               (line.partition(b":") for line in lines[1:])}
    if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        chunks, rest = [], body
        while True:
            size_line, _, rest = rest.partition(b"\r\n")
            try:
                size = int(size_line.split(b";")[0], 16)
            except ValueError:
                raise OSError(f"a malformed chunk: {size_line[:20]!r}") from None
            if size == 0:
                return status, b"".join(chunks)
            if len(rest) < size + 2:
                raise OSError("the connection closed inside a chunk")
            chunks.append(rest[:size])
            rest = rest[size + 2:]
    if b"content-length" in headers:
        try:
            length = int(headers[b"content-length"])
        except ValueError:
            raise OSError(f"a malformed Content-Length: {headers[b'content-length'][:20]!r}") \
                from None
        if len(body) < length:
            raise OSError("the connection closed before the response's body ended")
        body = body[:length]
    return status, body
