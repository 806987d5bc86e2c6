"""Limits on what one client may try: log-ins, sign-ups, API tokens and cards.

Flask-Limiter counts the attempts in one store for every process and host (Redis, from
``KAPOK_RATELIMIT_STORAGE_URI``); without it each process counts in its own memory, which only
one process serving alone may rely on. Each check below is a limit used as a context manager
at a line of its own: Flask-Limiter files such a limit under the line it is entered from, so
every line must always enter the same limit, and its key is read from the request.
"""

from __future__ import annotations

import logging
import math
import time

from flask import current_app, request
from flask_limiter import Limiter, RateLimitExceeded
from flask_limiter.util import get_remote_address
from flask_login import current_user

from identity.domain import normal_email

log = logging.getLogger(__name__)
__all__ = ["RateLimitExceeded", "count_card_charge", "count_card_setup", "count_log_in",
           "count_sign_up", "count_token_issued", "init_app"]


def init_app(app) -> Limiter:
    """This app's limiter, over the configured store (this process's memory when none is)."""
    uri = app.config.get("RATELIMIT_STORAGE_URI") or "memory://"
    if uri.startswith("memory:"):
        log.warning("rate limits are counted in this process's memory (%s): each process "
                    "and host counts apart; set KAPOK_RATELIMIT_STORAGE_URI=redis://... to "
                    "share them", uri)
    else:
        log.info("rate limits are counted in %s, shared by every process", uri.split("@")[-1])
    # A store that stops answering must not hold requests up: a second at most, then this
    # process counts in its memory until the store answers again.
    options = {"socket_connect_timeout": 1, "socket_timeout": 1,
               **app.config.get("RATELIMIT_STORAGE_OPTIONS", {})}
    app.config.update(RATELIMIT_STORAGE_URI=uri, RATELIMIT_STORAGE_OPTIONS=options)
    limiter = Limiter(get_remote_address, app=app, strategy="moving-window",
                      in_memory_fallback_enabled=True, swallow_errors=True)
    app.extensions["kapok_limiter"] = limiter

    @app.after_request
    def retry_after(response):
        # Only on a refusal: Flask-Limiter's own headers would put Retry-After on every answer
        # of a limited view, and on a redirect it asks the browser to wait before following.
        refused_by = limiter.current_limit
        if response.status_code == 429 and refused_by is not None and refused_by.breached:
            try:
                wait = math.ceil(refused_by.window.reset_time - time.time())
            except Exception:  # the store went away since: a minute is every window's floor
                log.warning("rate limit store unreachable for Retry-After", exc_info=True)
                wait = 60
            response.headers["Retry-After"] = str(max(1, wait))
        return response

    return limiter


def _limiter() -> Limiter:
    return current_app.extensions["kapok_limiter"]


def _per_address() -> str:
    return f"{current_app.config['ADDRESS_ATTEMPTS_PER_MINUTE']}/minute"


TOO_MANY_FROM_ADDRESS = "Too many attempts from your address. Wait a minute and try again."


def _submitted_email() -> str:
    return normal_email(request.form.get("email", ""))[:120] or "-"


def _failed(response) -> bool:
    return response.status_code == 401


def count_log_in() -> None:
    """Counts a log-in attempt from the client's address, and refuses one for an e-mail with
    too many failed attempts (only a 401 answer counts against the e-mail). Raises
    RateLimitExceeded before any password is checked."""
    with _limiter().shared_limit(_per_address, scope="log-in per address",
                                 error_message=TOO_MANY_FROM_ADDRESS):
        pass
    per_email = f"{current_app.config['LOGIN_ATTEMPTS_PER_MINUTE']}/minute"
    with _limiter().shared_limit(per_email, scope="failed log-in per e-mail",
                                 key_func=_submitted_email, deduct_when=_failed):
        pass


def count_sign_up() -> None:
    """Counts a sign-up from the client's address; raises RateLimitExceeded past the limit."""
    with _limiter().shared_limit(_per_address, scope="sign-up per address",
                                 error_message=TOO_MANY_FROM_ADDRESS):
        pass


def count_token_issued() -> None:
    """Counts an API token made from the client's address; raises RateLimitExceeded."""
    with _limiter().shared_limit(_per_address, scope="API token per address",
                                 error_message=TOO_MANY_FROM_ADDRESS):
        pass


def _organisation() -> str:
    return current_user.organisation or "-"


def _per_organisation() -> str:
    return f"{current_app.config['CARD_ATTEMPTS_PER_HOUR']}/hour"


def count_card_setup() -> bool:
    """Counts a card set up with the provider for the buyer's organisation; False past the
    limit."""
    try:
        with _limiter().shared_limit(_per_organisation, scope="card setup per organisation",
                                     key_func=_organisation):
            return True
    except RateLimitExceeded:
        return False


def count_card_charge() -> bool:
    """Counts a card charged for the buyer's organisation; False past the limit."""
    try:
        with _limiter().shared_limit(_per_organisation, scope="card charge per organisation",
                                     key_func=_organisation):
            return True
    except RateLimitExceeded:
        return False
