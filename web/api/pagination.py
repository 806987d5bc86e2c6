"""Pages of a list: ``?page=&page_size=`` in, ``{items, pagination}`` out, on every list."""

from __future__ import annotations

from functools import wraps
from http import HTTPStatus
from typing import Sequence

import flask_smorest
import marshmallow as ma
from webargs.flaskparser import FlaskParser, is_json_request

from web.input_bounds import request_json

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
MAX_PAGE = 1_000_000  # keeps the SQL offsets of a page within a 64-bit integer


class PageQuerySchema(ma.Schema):
    """``?page=&page_size=``, read into the page a view is asked for."""

    page = ma.fields.Integer(load_default=1, validate=ma.validate.Range(min=1, max=MAX_PAGE),
                             metadata={"description": "Page number, from 1."})
    page_size = ma.fields.Integer(
        load_default=DEFAULT_PAGE_SIZE, validate=ma.validate.Range(min=1, max=MAX_PAGE_SIZE),
        metadata={"description": f"Items per page, at most {MAX_PAGE_SIZE}."})

    @ma.post_load
    def page_asked_for(self, data, **kwargs) -> PageRequest:
        return PageRequest(data["page"], data["page_size"])


class PageRequest:
    """The page a view is asked for; the view records in ``item_count`` how many items
    there are in all, for the page's metadata."""

    def __init__(self, page: int, page_size: int):
        self.page, self.page_size = page, page_size
        self.item_count: int | None = None

    @property
    def first_item(self) -> int:
        return (self.page - 1) * self.page_size


class PageMetadataSchema(ma.Schema):
    total = ma.fields.Int(metadata={"description": "Total number of items."})
    total_pages = ma.fields.Int(metadata={"description": "Total number of pages."})
    first_page = ma.fields.Int(metadata={"description": "First available page number."})
    last_page = ma.fields.Int(metadata={"description": "Last available page number."})
    page = ma.fields.Int(metadata={"description": "Current page number."})
    page_size = ma.fields.Int(metadata={"description": "Items per page asked for."})
    previous_page = ma.fields.Int(metadata={"description": "Previous page number."})
    next_page = ma.fields.Int(metadata={"description": "Next page number."})


def page_metadata(asked: PageRequest) -> dict:
    """Where a page stands among all of them: the total, the first and last pages, and the
    pages before and after it when there are any."""
    total = asked.item_count
    metadata = {"total": total, "page": asked.page, "page_size": asked.page_size}
    last = -(-total // asked.page_size)
    metadata["total_pages"] = last
    if last:
        metadata.update(first_page=1, last_page=last)
        if 1 < asked.page <= last:
            metadata["previous_page"] = asked.page - 1
        if asked.page < last:
            metadata["next_page"] = asked.page + 1
    return metadata


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

    def paginate(self):
        """Pages of a list: the view gets the page asked for (``pagination_parameters``),
        records the number of items in all, and returns the page's items; the answer holds
        them with the page's metadata (``page_of``). A page number past ``MAX_PAGE`` is a
        422, not an overflow in the database."""

        def decorator(view):
            @wraps(view)
            def paged(*args, pagination_parameters: PageRequest, **kwargs):
                items = view(*args, pagination_parameters=pagination_parameters, **kwargs)
                return {"items": items, "pagination": page_metadata(pagination_parameters)}

            return self.arguments(PageQuerySchema, location="query",
                                  arg_name="pagination_parameters")(paged)

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
