"""Who may call an API operation: machine clients with bearer tokens, by role.

Only a token counts here, never a browser's session cookie: the API is exempt from the forms'
CSRF tokens, so a cookie must not be able to act through it.
"""

from __future__ import annotations

from functools import wraps

from flask import abort
from flask_login import current_user
from werkzeug.datastructures import WWWAuthenticate
from werkzeug.exceptions import Unauthorized

BEARER_SCHEME = "bearerAuth"
BEARER = [{BEARER_SCHEME: []}]


def token_required(blueprint, *roles: str):
    """Guards a view: no valid bearer token is a 401, a token of another role a 403. The
    check runs before the body is parsed, so an anonymous caller learns nothing more."""

    def decorator(view):
        @wraps(view)
        def guarded(*args, **kwargs):
            if not (current_user.is_authenticated and getattr(current_user, "by_token", False)):
                raise Unauthorized(
                    "send an API token: Authorization: Bearer kapok_...",
                    www_authenticate=WWWAuthenticate("bearer", {"realm": "kapok"}))
            if roles and not current_user.has_role(*roles):
                abort(403, description=f"this needs a token of a {' or '.join(roles)}")
            return view(*args, **kwargs)

        documented = blueprint.refuses(401, 403) if roles else blueprint.refuses(401)
        return documented(blueprint.doc(security=BEARER)(guarded))

    return decorator


def is_operator() -> bool:
    return current_user.has_role("operator")


def own_organisation() -> str | None:
    """The caller's organisation slug (None for operators and auditors)."""
    return current_user.organisation
