"""The JSON API under /api/v1 (flask-smorest + marshmallow); its OpenAPI document is served at
/api/v1/openapi.json."""

from __future__ import annotations


def register(app, csrf) -> None:
    """Registers the API's blueprints (machine clients authenticate with bearer tokens, so the
    API is exempt from the forms' CSRF tokens)."""
