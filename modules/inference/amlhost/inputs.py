"""Turn a request into ``run()``'s arguments, as azmlinfsrv 1.5.1 does (``server/input_parsers.py``).

- plain ``run(data)``: POST → the body as text (400 when it is not UTF-8; an HTML-form body is parsed away as by
  Flask, so ``run()`` gets ``""``); GET → the query parameters as a JSON object string.
- ``@input_schema`` ``run(a, b=…)``: POST → 415 unless the content type is JSON, 400 unless the body is a JSON
  object; each parameter from its key (its default when absent, 400 when it has none); GET → the same from the
  query parameters.
- ``@rawhttp`` ``run(request)``: the ``AMLRequest`` for any method.
Query parameters are JSON-decoded one by one when they parse (``?a=1&b=[1,2]&c=x`` → ``{"a": 1, "b": [1, 2],
"c": "x"}``) and a repeated name becomes a list. OPTIONS (plain and schema scripts) is answered 200 without calling
``run()``; any other method 405.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from .exchange import ScoreRequest, media_type
from .script import EntryScript, InputKind

__all__ = ["BadInput", "InputError", "OptionsRequest", "UnsupportedInput", "UnsupportedMethod", "run_arguments"]

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class InputError(Exception):
    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadInput(InputError):
    status = 400


class UnsupportedInput(InputError):
    status = 415


class UnsupportedMethod(InputError):
    status = 405


class OptionsRequest(Exception):
    """OPTIONS on /score for a plain or schema script: answered 200 with an empty body, ``run()`` not called."""


def is_json(content_type: str | None) -> bool:
    """Werkzeug's ``Request.is_json``."""
    mime = media_type(content_type)
    return mime == "application/json" or (mime.startswith("application/") and mime.endswith("+json"))


def _json_or_text(value: str) -> Any:
    try:
        return json.loads(value)
    except (ValueError, RecursionError):
        return value


def query_parameters(query_string: str) -> dict[str, Any]:
    grouped: dict[str, list[str]] = {}
    for key, value in parse_qsl(query_string, keep_blank_values=True):
        grouped.setdefault(key, []).append(value)
    return {key: _json_or_text(values[0]) if len(values) == 1 else [_json_or_text(v) for v in values]
            for key, values in grouped.items()}


def _plain_body(request: ScoreRequest) -> str:
    if media_type(request.content_type) in FORM_TYPES:
        from .wsgi import aml_request  # Werkzeug decides what an HTML form leaves in request.data

        data = aml_request(request).data
    else:
        data = request.body
    try:
        return str(data, "utf-8")
    except UnicodeDecodeError as exc:
        raise BadInput(f"Input cannot be decoded as UTF-8: {exc}") from None


def _schema_body(request: ScoreRequest) -> dict[str, Any]:
    if not is_json(request.content_type):
        raise UnsupportedInput("Expects Content-Type to be application/json")
    body = request.body
    try:
        value = json.loads(body)
    except json.JSONDecodeError as exc:
        if body:
            raise BadInput(f"POST body could not be decoded as JSON: {exc}") from None
        raise BadInput("POST body is empty. Expecting a JSON dictionary.") from None
    except UnicodeDecodeError as exc:  # azmlinfsrv: 500; a client's mistake is a 400 here
        raise BadInput(f"POST body could not be decoded as JSON: {exc}") from None
    except RecursionError:  # azmlinfsrv: 500; a client's mistake is a 400 here
        raise BadInput("POST body could not be decoded as JSON: it is nested too deeply") from None
    if not isinstance(value, dict):
        raise BadInput("POST body should be a JSON dictionary.")
    return value


def _schema_arguments(script: EntryScript, values: dict[str, Any]) -> dict[str, Any]:
    arguments: dict[str, Any] = {}
    for name in script.parameters:
        if name in values:
            arguments[name] = values[name]
        elif name in script.defaults:
            arguments[name] = script.defaults[name]
        else:
            raise BadInput(f"A value is not provided for the {name!r} parameter.")
    return arguments


def run_arguments(script: EntryScript, request: ScoreRequest) -> dict[str, Any]:
    """``run()``'s keyword arguments (without ``request_headers``). Raises ``InputError`` or ``OptionsRequest``."""
    kind, method = script.kind, request.method
    if kind is InputKind.RAW:
        from .wsgi import aml_request

        return {script.parameters[0]: aml_request(request)}
    if method == "POST":
        if kind is InputKind.PLAIN:
            return {script.parameters[0]: _plain_body(request)}
        return _schema_arguments(script, _schema_body(request))
    if method == "GET":
        values = query_parameters(request.query_string)
        if kind is InputKind.PLAIN:
            return {script.parameters[0]: json.dumps(values)}
        return _schema_arguments(script, values)
    if method == "OPTIONS":
        raise OptionsRequest()
    raise UnsupportedMethod("Method not allowed")
