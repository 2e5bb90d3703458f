"""What ``run()`` returned, as the HTTP reply azmlinfsrv 1.5.1 sends (``routes.py`` ``wrap_response``).

- a response object (``AMLResponse``, or any Werkzeug/Flask response): its status, headers and body as they are;
  ``x-ms-run-function-failed: True`` when its status is 5xx;
- anything else: ``json.dumps(result)`` as ``application/json`` with status 200. A ``str`` is encoded again (a
  returned JSON string arrives as a JSON string literal), ``None`` is ``{}``, as under azmlinfsrv.
A value JSON cannot carry (numpy arrays, bytes, sets, NaN/Infinity, circular data) is a 500 whose message says what
was returned and what to return instead. azmlinfsrv also answers 500 for the non-serialisable ones (with a message
pointing at its logs) but sends NaN/Infinity out as the non-standard tokens ``NaN``/``Infinity``; here they are an
error, since JSON (RFC 8259), most clients and IoT Hub's routing have no such values (see docs/modules.md).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from .exchange import Reply, message_reply

__all__ = ["INTERNAL_ERROR", "encode_result", "set_header"]

INTERNAL_ERROR = "An unexpected internal error occurred. Check the logs for more info."
_ENCODER = json.JSONEncoder(allow_nan=False)  # json.dumps's defaults otherwise; built once, not per call
JSON_HEADERS = (("Content-Type", "application/json"), ("x-ms-run-function-failed", "False"))


def set_header(headers: list[tuple[str, str]], name: str, value: str) -> None:
    """Werkzeug's ``headers[name] = value``: replace the first one in place, drop the others, or append."""
    lower = name.lower()
    positions = [i for i, (k, _) in enumerate(headers) if k.lower() == lower]
    if not positions:
        headers.append((name, value))
        return
    headers[positions[0]] = (name, value)
    for i in reversed(positions[1:]):
        del headers[i]


def _response_class() -> type | None:
    module = sys.modules.get("werkzeug.wrappers.response")  # only loaded when a script works with responses
    return getattr(module, "Response", None)


def _from_response(response: Any) -> Reply:
    body = response.get_data()
    headers = [(k, v) for k, v in response.headers.items() if k.lower() != "content-length"]
    status = response.status_code
    if status >= 500:
        set_header(headers, "x-ms-run-function-failed", "True")
    return Reply(status, headers, body, from_script=True)


def encode_result(result: Any) -> tuple[Reply, bool]:
    """(reply, True) for a good result; (a 500 reply, False) when it cannot be sent."""
    response_class = _response_class()
    try:
        if response_class is not None and isinstance(result, response_class):
            return _from_response(result), True
        text = _ENCODER.encode(result) if result is not None else "{}"  # AMLResponse(None) is {}
    except (TypeError, ValueError, RecursionError) as exc:
        what = "NaN or Infinity" if "Out of range float" in str(exc) else "a value"
        detail = str(exc) if not isinstance(exc, RecursionError) else "it is nested too deeply"
        return message_reply(500, f"An unexpected internal error occurred: run() returned {what} that cannot be "
                             f"sent as JSON ({detail}). Return dicts, lists, strings, finite numbers, booleans or "
                             "None (numpy: .tolist(), pandas: .to_dict()), or an AMLResponse.", error=exc), False
    except Exception as exc:  # a response object whose body cannot be read
        return message_reply(500, INTERNAL_ERROR, error=exc), False
    return Reply(200, list(JSON_HEADERS), text.encode()), True
