"""Requests see their own writes in the read model, which only the worker writes.

A command's save is in the event store at once, but the pages and lists that read the view
show it once the worker's projection has applied it, a few milliseconds later. So a request
that reads the view through ``read_view`` first waits for the writes it must show: a page,
for what this request saved and what this browser saved last (the position travels in the
session, from a form's POST to the page it redirects to); an API call, which carries no
session, for every write stored before it began, its client's among them. Writes never wait:
their answers come from the aggregates they saved. The wait is bounded; past it the answer is
503 with Retry-After, and nothing is lost: the write itself is recorded.
"""

from __future__ import annotations

from flask import current_app, request, session

from ledger.read.view import ViewBehindError

SESSION_KEY = "kapok_position"
RETRY_AFTER_SECONDS = 2


class ViewNotReadyError(Exception):
    """The read model does not show the writes this request must show yet."""

    retry_after = RETRY_AFTER_SECONDS

    def __init__(self):
        super().__init__(
            "recent changes are recorded, but the pages that list them are still catching "
            "up; please retry in a few seconds")


def read_view():
    """The read model, once it shows the writes this request must show."""
    market = _market()
    if request.path.startswith("/api/"):
        wanted = market.recorder.max_notification_id()
    else:
        remembered = session.get(SESSION_KEY) if session else None
        wanted = max(market.saved_position() or 0, remembered or 0) or None
        if remembered is not None:
            session.pop(SESSION_KEY, None)
    try:
        market.view.wait(wanted, current_app.config["VIEW_WAIT_SECONDS"])
    except ViewBehindError:
        raise ViewNotReadyError() from None
    return market.view


def register(app) -> None:
    @app.before_request
    def forget_other_requests_writes():
        _market().forget_saved_position()  # this thread served other requests before

    @app.after_request
    def remember_own_writes(response):
        position = _market().saved_position()
        if position is not None and response.status_code < 400 and not request.path.startswith(
                ("/api/", "/webhooks/")):
            session[SESSION_KEY] = max(position, session.get(SESSION_KEY) or 0)
        return response


def _market():
    return current_app.extensions["kapok_market"]
