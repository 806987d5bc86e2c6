"""The HTTP baseline: a bare Flask app answering a constant small page, served by gunicorn
with the same settings as Kapok
(``gunicorn -c python:web.serving -w 2 "testbed.bare_app:create_app()"``).

Whatever Kapok's pages and orders cost beyond this is Kapok's own: the rest is Flask,
gunicorn, the loopback socket and the load generator, measured in the same run.
"""

from __future__ import annotations

from flask import Flask, jsonify

PAGE = ("<!doctype html><html><head><title>bare</title></head>"
        "<body><h1>Catalogue</h1><p>A constant page.</p></body></html>")


def create_app() -> Flask:
    app = Flask(__name__)

    @app.get("/")
    def page():
        return PAGE

    @app.get("/json")
    def json_page():
        return jsonify(items=[], pagination={"page": 1, "total": 0})

    # The order flow's stand-in: two POSTs with small JSON bodies, as the load generator
    # sends to Kapok's POST /api/v1/orders and POST /api/v1/orders/<id>/pay.
    @app.post("/api/v1/orders")
    def order():
        return jsonify(order_id="KAP-ORD-BARE", state="reserved"), 201

    @app.post("/api/v1/orders/<order_id>/pay")
    def pay(order_id: str):
        return jsonify(order_id=order_id, state="fulfilled")

    return app
