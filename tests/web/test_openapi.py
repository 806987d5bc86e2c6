"""The API's OpenAPI document is valid and says exactly what the app serves; its docs page
loads Swagger UI from the app itself under the site's CSP."""

from __future__ import annotations

import re

from openapi_spec_validator import validate

from web.security import CONTENT_SECURITY_POLICY

# Documentation, not API operations: the document itself and the page that shows it.
DOCUMENTATION_ENDPOINTS = ("api-docs.", "api_docs_ui.")
IMPLICIT_METHODS = {"HEAD", "OPTIONS"}


def spec_operations(spec: dict) -> set[tuple[str, str]]:
    return {(path, method.upper()) for path, operations in spec["paths"].items()
            for method in operations if method != "parameters"}


def routed_operations(app) -> set[tuple[str, str]]:
    operations = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1") or rule.endpoint.startswith(
                DOCUMENTATION_ENDPOINTS):
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        operations |= {(path, method) for method in rule.methods - IMPLICIT_METHODS}
    return operations


def test_the_openapi_document_is_valid(anonymous):
    response = anonymous.get("/api/v1/openapi.json")
    assert response.status_code == 200
    spec = response.get_json()
    validate(spec)
    assert spec["info"]["title"] == "Kapok API" and spec["openapi"] == "3.0.3"
    assert spec["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http", "scheme": "bearer", "bearerFormat": "kapok_..."}


def test_the_document_and_the_routes_agree_operation_by_operation(app, anonymous):
    spec = anonymous.get("/api/v1/openapi.json").get_json()
    documented, routed = spec_operations(spec), routed_operations(app)
    assert documented == routed, (documented - routed, routed - documented)
    assert len(routed) >= 17


def test_operations_that_need_a_token_say_so(anonymous):
    spec = anonymous.get("/api/v1/openapi.json").get_json()
    secured = {(path, method) for path, operations in spec["paths"].items()
               for method, operation in operations.items()
               if method != "parameters" and operation.get("security")}
    assert ("/api/v1/orders", "post") in secured
    assert ("/api/v1/audit/events", "get") in secured
    assert ("/api/v1/listings", "get") not in secured


def test_every_list_documents_page_and_page_size(anonymous):
    spec = anonymous.get("/api/v1/openapi.json").get_json()
    lists = ["/api/v1/projects", "/api/v1/listings", "/api/v1/orders", "/api/v1/holdings",
             "/api/v1/retirements", "/api/v1/audit/events"]
    for path in lists:
        names = {p["name"] for p in spec["paths"][path]["get"]["parameters"]}
        assert {"page", "page_size"} <= names, path
        schema = spec["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]
        assert schema["schema"]["$ref"].endswith("Page"), path


def test_the_docs_page_loads_its_assets_from_the_app_itself(anonymous):
    page = anonymous.get("/api/v1/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert page.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    # No inline script or style: the CSP (script-src 'self'; style-src 'self') would block it.
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)
    assert "<style" not in html and "style=" not in html
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert len(assets) >= 4
    for asset in assets:
        assert asset.startswith("/"), f"{asset} is not served by the app"
        with anonymous.get(asset) as response:  # closes the file it streams
            assert response.status_code == 200, asset
            assert response.data
    spec_url = re.search(r'data-spec-url="([^"]+)"', html).group(1)
    assert anonymous.get(spec_url).get_json()["openapi"] == "3.0.3"
    assert anonymous.get("/api/v1/docs/assets/index.html").status_code == 404
