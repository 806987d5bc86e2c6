"""Calls of the JSON API as its clients make them, and the error format its answers share."""

from __future__ import annotations

ERROR_KEYS = {"code", "status", "message"}


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def first_listing(anonymous, project="VCS-1067") -> dict:
    response = anonymous.get(f"/api/v1/listings?project={project}")
    assert response.status_code == 200
    return response.get_json()["items"][0]


def place_order(caller, listing_id: str, tonnes: int = 5, **extra):
    return caller.post("/api/v1/orders", json={"listing_id": listing_id, "tonnes": tonnes,
                                               **extra})


def assert_error(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    body = response.get_json()
    assert ERROR_KEYS <= set(body) and body["code"] == status
    return body

