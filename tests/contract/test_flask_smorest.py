"""What web/api/ relies on in flask-smorest: the hooks it overrides and the arguments it passes
on to webargs. Fails on an upgrade that changes them."""

from __future__ import annotations

import flask_smorest
import marshmallow as ma
from flask import Flask
from flask.views import MethodView
from webargs.flaskparser import FlaskParser


class Query(ma.Schema):
    page = ma.fields.Integer(load_default=1)


def app_with(api_class, blueprint: flask_smorest.Blueprint) -> Flask:
    app = Flask(__name__)
    app.config.update(API_TITLE="t", API_VERSION="v1", OPENAPI_VERSION="3.0.3")
    app.api = api_class(app)
    app.api.register_blueprint(blueprint)
    return app


def test_the_api_answers_every_http_error_of_the_app_through_handle_http_exception():
    class OwnErrors(flask_smorest.Api):
        def handle_http_exception(self, error):
            return f"ours: {error.code}", error.code

    app = app_with(OwnErrors, flask_smorest.Blueprint("b", __name__))

    response = app.test_client().get("/not-an-api-page")

    assert (response.status_code, response.text) == (404, "ours: 404")


def test_arguments_hands_the_parsed_query_to_the_view_under_the_name_asked_for():
    blueprint = flask_smorest.Blueprint("b", __name__)

    @blueprint.route("/items")
    class Items(MethodView):
        @blueprint.arguments(Query(), location="query", arg_name="asked")
        @blueprint.response(200)
        def get(self, asked):
            return {"page": asked["page"]}

    app = app_with(flask_smorest.Api, blueprint)

    assert app.test_client().get("/items?page=3").get_json() == {"page": 3}
    assert app.test_client().get("/items?page=x").status_code == 422


def test_a_blueprint_reads_json_bodies_with_the_parser_it_names():
    class FixedJSON(FlaskParser):
        def load_json(self, req, schema):
            return {"page": 7}

    class OwnParser(flask_smorest.Blueprint):
        ARGUMENTS_PARSER = FixedJSON()

    blueprint = OwnParser("b", __name__)

    @blueprint.route("/items", methods=["POST"])
    @blueprint.arguments(Query())
    @blueprint.response(200)
    def post(body):
        return body

    app = app_with(flask_smorest.Api, blueprint)

    assert app.test_client().post("/items", json={"page": 1}).get_json() == {"page": 7}


def test_a_view_class_decorated_in_add_url_rule_is_documented_so():
    class Refusing(flask_smorest.Blueprint):
        def add_url_rule(self, rule, endpoint=None, view_func=None, *args, **kwargs):
            for method in view_func.methods:
                name = method.lower()
                setattr(view_func, name, self.alt_response(400, response="BAD_REQUEST")(
                    getattr(view_func, name)))
            return super().add_url_rule(rule, endpoint, view_func, *args, **kwargs)

    blueprint = Refusing("b", __name__)

    @blueprint.route("/items")
    class Items(MethodView):
        @blueprint.response(200)
        def get(self):
            return {}

    app = app_with(flask_smorest.Api, blueprint)
    responses = app.api.spec.to_dict()["paths"]["/items"]["get"]["responses"]

    assert "400" in responses
