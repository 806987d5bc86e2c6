"""The JSON API under /api/v1 (flask-smorest + marshmallow); its OpenAPI document is served at
/api/v1/openapi.json and read at /api/v1/docs."""

from __future__ import annotations

import flask_smorest

from web.api.access import BEARER_SCHEME
from web.errors import http_error


class KapokApi(flask_smorest.Api):
    """flask-smorest's Api, its errors answered as the rest of the site answers them
    (web/errors.py): flask-smorest registers its handler for every HTTP error of the app,
    whose HTML areas must keep their HTML pages."""

    def handle_http_exception(self, error):
        return http_error(error)


def register(app, csrf) -> None:
    """Registers the API's blueprints (machine clients authenticate with bearer tokens, so the
    API is exempt from the forms' CSRF tokens)."""
    from web.api import audit, docs, holdings, listings, orders, projects, retirements

    app.config.update(OPENAPI_URL_PREFIX="/api/v1", OPENAPI_JSON_PATH="openapi.json")
    api = KapokApi(app, spec_kwargs={"info": {"description": (
        "Kapok's registry and marketplace for the Tambopata buffer zone. Public reads need no "
        "token; orders, holdings, retirements and the audit need "
        "`Authorization: Bearer kapok_...`. Lists take `page` and `page_size`. Money is a "
        "decimal string or integer minor units; tonnes are integers.")}})
    api.spec.components.security_scheme(BEARER_SCHEME, {
        "type": "http", "scheme": "bearer", "bearerFormat": "kapok_..."})
    for module in (projects, listings, orders, holdings, retirements, audit):
        api.register_blueprint(module.bp)
        csrf.exempt(module.bp)
    app.register_blueprint(docs.bp)
