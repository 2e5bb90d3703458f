"""Module messages and the ``score`` direct method, as requests to the same core as HTTP.

A message is scored as ``POST /score`` with its content type (``application/json`` when it has none) and its body,
so an ``inference_schema`` script takes the same JSON from MQTT as from HTTP, a plain script gets the body as text,
and a ``@rawhttp`` script gets an ``AMLRequest``. A 2xx reply's body goes to the output with the reply's content
type; anything else is a failure (``describe_failure`` says what to put in the error report).

A direct-method payload is the JSON body (a string payload is taken as the body text itself). The method answers
with the reply's status and its JSON body (``{"base64": …}`` for a body that is not JSON); a failure is
``{"error": <kind>, "message": <what happened>}``.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from .exchange import Headers, Reply, ScoreRequest, media_type
from .inputs import InputError

__all__ = ["describe_failure", "message_request", "method_request", "method_response"]


def message_request(body: bytes, content_type: str | None) -> ScoreRequest:
    return ScoreRequest("POST", "/score", "", Headers([("Content-Type", content_type or "application/json"),
                                                      ("Content-Length", str(len(body)))]), body)


def method_request(payload: Any) -> ScoreRequest:
    text = payload if isinstance(payload, str) else json.dumps(payload)
    return message_request(text.encode("utf-8"), "application/json")


def is_success(reply: Reply) -> bool:
    return 200 <= reply.status < 300


def describe_failure(reply: Reply) -> tuple[str, str]:
    """(kind, message) for an error report: the exception ``run()`` raised, the input error, or the reply's body."""
    error = reply.error
    if error is not None and (reply.header("x-ms-run-function-failed") == "True" or isinstance(error, InputError)):
        return type(error).__name__, str(error)
    try:
        message = json.loads(reply.body)["message"]
    except (ValueError, KeyError, TypeError):
        message = reply.body.decode("utf-8", errors="replace")[:1024]
    kind = type(error).__name__ if error is not None else f"HTTP{reply.status}"
    return kind, str(message)


def body_as_json_value(reply: Reply) -> Any:
    if media_type(reply.content_type) == "application/json":
        try:
            return json.loads(reply.body)
        except ValueError:
            pass
    return {"base64": base64.b64encode(reply.body).decode()}


def method_response(reply: Reply) -> tuple[int, Any]:
    if is_success(reply):
        return reply.status, body_as_json_value(reply)
    kind, message = describe_failure(reply)
    return reply.status, {"error": kind, "message": message}
