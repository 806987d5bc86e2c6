"""Errors as users should see them: JSON ``{code, status, message, errors}`` under ``/api``,
an HTML page elsewhere. Domain refusals become 4xx; an unreachable database a 503."""

from __future__ import annotations

import logging

from flask import jsonify, make_response, render_template, request
from werkzeug.exceptions import HTTPException

from ledger.domain.errors import LedgerError
from ledger.error_codes import codes_for
from ledger.adapters.pg_store import DatabaseTimeoutError
from market.domain.errors import MarketError
from web.consistency import ViewNotReadyError
from web.dbgate import DatabaseUnavailable
from identity.domain import IdentityError

log = logging.getLogger(__name__)


def status_for(error: Exception) -> int:
    """The HTTP status of a domain refusal, by the kind of error it is (ledger/error_codes.py):
    404 for unknown things, 409 for a state that forbids it, 402 for a declined card, 502 for
    a payment provider that failed, else 400."""
    return codes_for(error).http_status


def error_response(status: int, message: str, errors: dict | None = None):
    from werkzeug.http import HTTP_STATUS_CODES

    phrase = HTTP_STATUS_CODES.get(status, "Error")
    if request.path.startswith("/api/"):
        body = {"code": status, "status": phrase, "message": message}
        if errors:
            body["errors"] = errors
        response = jsonify(body)
    else:
        try:
            page = render_template("error.html", code=status, phrase=phrase, message=message)
        except Exception:  # the page itself needs what failed (the database, for the header)
            page = render_template("error_plain.html", code=status, phrase=phrase,
                                   message=message)
        response = make_response(page)
    response.status_code = status
    return response


def unavailable_response(message: str, retry_after: int):
    """A 503 saying when to try again."""
    response = error_response(503, message)
    response.headers["Retry-After"] = str(retry_after)
    return response


def _database_errors() -> tuple[type[Exception], ...]:
    import sqlite3

    errors: list[type[Exception]] = [sqlite3.OperationalError]
    try:
        import psycopg
        import psycopg_pool

        errors += [psycopg.OperationalError, psycopg_pool.PoolTimeout]
    except ImportError:  # pragma: no cover - psycopg is a dependency
        pass
    from eventsourcing.persistence import OperationalError as StoreOperationalError

    errors += [StoreOperationalError, DatabaseTimeoutError]
    return tuple(errors)


def http_error(error: HTTPException):
    """The answer to an HTTP error (an ``abort``, a route not found, a 500), in JSON under
    ``/api`` with webargs' field errors, an HTML page elsewhere."""
    errors = None
    data = getattr(error, "data", None)  # webargs / flask-smorest validation messages
    if isinstance(data, dict) and "messages" in data:
        errors = data["messages"]
    response = error_response(error.code or 500, error.description or error.name, errors)
    # The exception's own headers (Allow on a 405, WWW-Authenticate on a 401) stay.
    for name, value in error.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def register(app) -> None:
    app.register_error_handler(HTTPException, http_error)

    @app.errorhandler(LedgerError)
    @app.errorhandler(MarketError)
    @app.errorhandler(IdentityError)
    def domain_error(error: Exception):
        return error_response(status_for(error), str(error))

    def database_unavailable(error: Exception):
        log.warning("database unavailable: %s", error)
        gate = app.extensions.get("kapok_db_gate")
        # No answer at all says the database is away, and the next requests need not wait to
        # hear it; an error the server sent (a turn not granted) says it is there, and a pool
        # with no connection free says only that this process is busy.
        if gate is not None and isinstance(error, DatabaseTimeoutError):
            gate.report(str(error))
        return unavailable_response("the database is unavailable; please retry shortly", 5)

    @app.errorhandler(ViewNotReadyError)
    def view_not_ready(error: ViewNotReadyError):
        log.warning("read model behind on %s %s", request.method, request.path)
        return unavailable_response(str(error), error.retry_after)

    for error_class in _database_errors():
        app.register_error_handler(error_class, database_unavailable)
    app.register_error_handler(DatabaseUnavailable, database_unavailable)

    @app.before_request
    def database_answers():
        gate = app.extensions.get("kapok_db_gate")
        if gate is not None and not request.path.startswith("/static/"):
            gate.check()  # raises DatabaseUnavailable: a 503 at once

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        log.exception("unexpected error on %s %s", request.method, request.path)
        return error_response(500, "something went wrong on our side; nothing was charged "
                                   "twice and nothing was half-saved")

