"""Requests see their own writes in the read model, which only the worker writes.

A command's save is in the event store at once, but the pages and lists that read the view
show it once the worker's projection has applied it, a few milliseconds later. So a request
that must see a write waits for it: an API call that saved waits before it answers (its
client may list what it made next); a page reads the view through ``read_view``, which waits
for what this request saved and for what this browser saved last (the position travels in
the session, from a form's POST to the page it redirects to). The wait is bounded; past it
the answer is 503 with Retry-After, and nothing is lost: the write itself is recorded.
"""

from __future__ import annotations

from flask import current_app, request, session

from ledger.view import ViewBehindError

SESSION_KEY = "kapok_position"
RETRY_AFTER_SECONDS = 2


class ViewNotReadyError(Exception):
    """The read model does not show this request's own write yet."""

    retry_after = RETRY_AFTER_SECONDS

    def __init__(self):
        super().__init__(
            "your change is recorded, but the pages that list it are still catching up; "
            "please retry in a few seconds (an API request repeated with the same "
            "idempotency_key returns its result without doing it twice)")


def read_view():
    """The read model, once it shows what this request and this browser saved."""
    market = _market()
    remembered = session.get(SESSION_KEY) if session else None
    _wait(max(market.saved_position() or 0, remembered or 0) or None)
    if remembered is not None:
        session.pop(SESSION_KEY, None)
    return market.view


def register(app) -> None:
    app.config.setdefault("VIEW_WAIT_SECONDS", 5.0)

    @app.before_request
    def forget_other_requests_writes():
        _market().forget_saved_position()  # this thread served other requests before

    @app.after_request
    def remember_own_writes(response):
        position = _market().saved_position()
        if position is None or request.blueprint == "webhooks" or response.status_code >= 400:
            return response  # a payment provider lists nothing afterwards
        if request.path.startswith("/api/"):
            try:
                _wait(position)
            except Exception as error:  # answered by the app's handlers, as in a view
                return app.make_response(app.handle_user_exception(error))
            return response
        session[SESSION_KEY] = max(position, session.get(SESSION_KEY) or 0)
        return response


def _wait(position: int | None) -> None:
    try:
        _market().view.wait(position, current_app.config["VIEW_WAIT_SECONDS"])
    except ViewBehindError:
        raise ViewNotReadyError() from None


def _market():
    return current_app.extensions["kapok_market"]
