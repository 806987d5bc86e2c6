"""Pages of a list: ``?page=&page_size=`` in, ``{items, pagination}`` out, on every list."""

from __future__ import annotations

from functools import wraps
from http import HTTPStatus
from typing import Sequence

import flask_smorest
import marshmallow as ma
from flask_smorest.pagination import PaginationMetadataSchema
from webargs.flaskparser import FlaskParser, is_json_request

from web.input_bounds import request_json

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
MAX_PAGE = 1_000_000  # keeps the SQL offsets of a page within a 64-bit integer


class PageMetadataSchema(PaginationMetadataSchema):
    page_size = ma.fields.Int(metadata={"description": "Items per page asked for."})


class AppJSONParser(FlaskParser):
    """webargs' parser, reading a JSON body as the app reads JSON (web/input_bounds.py): a
    body nested too deep or with a number too long is a 400 saying so, not a 500."""

    def load_json(self, req, schema):
        if not is_json_request(req) or not req.get_data(cache=True):
            return ma.missing  # no body: the schema's required fields say what is missing
        return request_json()


class ApiBlueprint(flask_smorest.Blueprint):
    """A blueprint whose paginated views put the page's metadata in the body, beside the
    items (clients and the OpenAPI document see one schema, not a JSON header)."""

    ARGUMENTS_PARSER = AppJSONParser()

    DEFAULT_PAGINATION_PARAMETERS = {"page": 1, "page_size": DEFAULT_PAGE_SIZE,
                                     "max_page_size": MAX_PAGE_SIZE}

    def paginate(self, pager=None, **kwargs):
        """flask-smorest's pagination (the view pages its own items), with the page number
        bounded too: ``?page=10**30`` is a 422, not an overflow in the database."""
        paginated = super().paginate(pager, **kwargs)

        def decorator(view):
            @wraps(view)
            def bounded(*args, pagination_parameters, **view_kwargs):
                if pagination_parameters.page > MAX_PAGE:
                    flask_smorest.abort(422, messages={"query": {
                        "page": [f"Must be less than or equal to {MAX_PAGE}."]}})
                return view(*args, pagination_parameters=pagination_parameters, **view_kwargs)

            return paginated(bounded)

        return decorator

    def arguments(self, schema, *args, **kwargs):
        """flask-smorest's, with a schema class made an instance once: webargs would make a
        new one from the class on every request (a few percent of an order's CPU)."""
        return super().arguments(schema() if isinstance(schema, type) else schema,
                                 *args, **kwargs)

    def add_url_rule(self, rule, endpoint=None, view_func=None, *args, **kwargs):
        """flask-smorest's, with a 400 documented on every operation: any request may be
        refused before its view runs (web/input_bounds.py: control characters, JSON too
        deep or with numbers too long)."""
        for method in getattr(view_func, "methods", None) or ():
            name = method.lower()
            setattr(view_func, name, self.refuses(400)(getattr(view_func, name)))
        return super().add_url_rule(rule, endpoint, view_func, *args, **kwargs)

    def refuses(self, *codes: int):
        """Documents the error statuses a view may answer besides its arguments' 422: domain
        refusals (web/errors.py: 400, 404, 409), a missing or wrong token (401, 403)."""

        def decorator(view):
            for code in codes:
                view = self.alt_response(code, response=HTTPStatus(code).name)(view)
            return view

        return decorator

    def _set_pagination_metadata(self, page_params, result, headers):
        metadata = self._make_pagination_metadata(page_params.page, page_params.page_size,
                                                  page_params.item_count)
        metadata["page"], metadata["page_size"] = page_params.page, page_params.page_size
        return {"items": result, "pagination": metadata}, headers

    def _document_pagination_metadata(self, spec, resp_doc):
        pass  # documented by the response schema: see page_of


def page_of(item_schema: type[ma.Schema]) -> type[ma.Schema]:
    """The schema of one page of ``item_schema`` items with its metadata."""
    name = item_schema.__name__.removesuffix("Schema")
    return type(f"{name}PageSchema", (ma.Schema,), {
        "items": ma.fields.List(ma.fields.Nested(item_schema), required=True),
        "pagination": ma.fields.Nested(PageMetadataSchema, required=True),
    })


def take_page(items: Sequence, page_params) -> Sequence:
    """The requested page's part of ``items`` (ids, say, loaded afterwards), recording how
    many items there are in all for the metadata."""
    page_params.item_count = len(items)
    return items[page_params.first_item:page_params.first_item + page_params.page_size]
