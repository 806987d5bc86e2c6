"""What any request may carry, checked once for every route: printable text in its address,
query string, headers and form fields, and JSON of bounded depth and number size.

PostgreSQL refuses NUL in text, Python's ``json`` recurses once per nesting level and refuses
integers of more than 4,300 digits: each would otherwise fail deep inside a view as a 500.
"""

from __future__ import annotations

import json
import math
import re

from flask import abort, request
from flask.json.provider import DefaultJSONProvider

MAX_JSON_DEPTH = 32  # Kapok's deepest body (a quote's activities) nests three levels
MAX_JSON_DIGITS = 40  # no tonnes, position or minor amount comes near; 2**64 has 20 digits
# C0 and C1 control characters and DEL; tabs and line breaks are text (a reason, a textarea).
_CONTROL_IN_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_CONTROL_IN_PATH = re.compile("[\x00-\x1f\x7f-\x9f]")
# JSON text may also carry lone surrogates ("\ud800"), which no encoder can write back.
_UNWRITABLE_IN_JSON = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
# A header value may hold a tab but no other control character (RFC 9110, section 5.5).
_CONTROL_IN_HEADER = re.compile("[\x00-\x08\x0a-\x1f\x7f]")
_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


class UnreadableJSONError(ValueError):
    """A JSON document Kapok will not read; the message says why."""


def _control(pattern: re.Pattern, text: str) -> str | None:
    found = pattern.search(text)
    return f"U+{ord(found.group()):04X}" if found else None


def _refuse_control(where: str, pattern: re.Pattern, text: str) -> None:
    character = _control(pattern, text)
    if character:
        abort(400, description=f"{where} contains the control character {character}: "
                               "only printable text is accepted")


def check_request_text() -> None:
    """Aborts with 400, naming the place, if the path, a query parameter, a header or a form
    field holds a control character."""
    _refuse_control("the address", _CONTROL_IN_PATH, request.path)
    for name, value in request.args.items(multi=True):
        _refuse_control(f"the query parameter {name[:40]!r}", _CONTROL_IN_TEXT, name + value)
    for name, value in request.headers.items():
        _refuse_control(f"the {name[:40]} header", _CONTROL_IN_HEADER, value)
    if request.mimetype in _FORMS:
        for name, value in request.form.items(multi=True):
            _refuse_control(f"the form field {name[:40]!r}", _CONTROL_IN_TEXT, name + value)


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_JSON_DIGITS:
        raise UnreadableJSONError(f"a number has {len(text.lstrip('-')):,} digits; "
                                  f"at most {MAX_JSON_DIGITS} are accepted")
    return int(text)


def _bounded_float(text: str) -> float:
    digits = len(text.lstrip("-").split("e")[0].split("E")[0].replace(".", ""))
    number = float(text)
    if digits > MAX_JSON_DIGITS or not math.isfinite(number):
        raise UnreadableJSONError(f"a number of {len(text):,} characters is beyond what Kapok "
                                  f"reads (at most {MAX_JSON_DIGITS} digits, finite)")
    return number


def _no_constant(name: str) -> None:
    raise UnreadableJSONError(f"{name} is not a JSON number")


def _check_tree(document: object) -> None:
    """Raises UnreadableJSONError if ``document`` nests deeper than MAX_JSON_DEPTH or holds
    text with a control character (walked with a stack: no recursion to exhaust)."""
    stack = [(document, 0, "the body")]
    while stack:
        value, depth, where = stack.pop()
        if isinstance(value, str):
            character = _control(_UNWRITABLE_IN_JSON, value)
            if character:
                raise UnreadableJSONError(f"{where} contains the control character or lone "
                                          f"surrogate {character}: only printable text is "
                                          "accepted")
        elif isinstance(value, (dict, list)):
            if depth >= MAX_JSON_DEPTH:
                raise UnreadableJSONError(f"the body nests arrays and objects more than "
                                          f"{MAX_JSON_DEPTH} levels deep")
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                place = f"{where}.{key}" if where != "the body" else str(key)
                stack.append((item, depth + 1, place[:80]))
                if isinstance(key, str):
                    stack.append((key, depth + 1, f"the name {place[:80]!r}"))


def load_json(text: str | bytes) -> object:
    """The JSON document in ``text``, or UnreadableJSONError (a ValueError) saying why: not
    JSON, nested deeper than MAX_JSON_DEPTH, a number of more than MAX_JSON_DIGITS digits or
    beyond a float's range, NaN or Infinity, or text with a control character or a lone
    surrogate."""
    try:
        document = json.loads(text, parse_int=_bounded_int,
                              parse_float=_bounded_float, parse_constant=_no_constant)
    except RecursionError:  # nested deeper than the interpreter's recursion limit
        raise UnreadableJSONError(f"the body nests arrays and objects more than "
                                  f"{MAX_JSON_DEPTH} levels deep") from None
    except UnreadableJSONError:
        raise
    except ValueError as error:  # JSONDecodeError, or bytes that are not UTF-8 text
        raise UnreadableJSONError(f"the body is not JSON: {error}") from None
    _check_tree(document)
    return document


def request_json() -> object:
    """The request's JSON body, or a 400 saying why it cannot be read (Flask's own
    ``get_json`` hides the reason outside debug mode)."""
    try:
        return load_json(request.get_data(cache=True))
    except UnreadableJSONError as error:
        abort(400, description=str(error))


class BoundedJSONProvider(DefaultJSONProvider):
    """Flask's JSON, reading with ``load_json``'s bounds (``request.get_json`` included)."""

    def loads(self, s: str | bytes, **kwargs) -> object:
        return load_json(s)


def register(app) -> None:
    app.json = BoundedJSONProvider(app)
    app.before_request(check_request_text)
