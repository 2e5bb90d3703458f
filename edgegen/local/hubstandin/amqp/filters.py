"""Where an Event Hubs receiver starts: its ``apache.org:selector-filter:string`` (pure; no I/O).

Seen from the clients: ``azure-eventhub`` sends ``amqp.annotation.x-opt-offset > '-1'`` (``>=`` when inclusive;
``'-1'`` is the start, ``'@latest'`` the end), ``… x-opt-enqueued-time > '1700000000000'`` (ms) and
``… x-opt-sequence-number > '5'``; the Azure CLI sends ``amqp.annotation.x-opt-enqueuedtimeutc > 1700000000000``
(no quotes). No filter means the start of the stream.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["FilterError", "StartPosition", "parse_selector"]

_SELECTOR = re.compile(
    r"^\s*amqp\.annotation\.(?P<field>x-opt-offset|x-opt-enqueued-time|x-opt-enqueuedtimeutc|x-opt-sequence-number)"
    r"\s*(?P<op>>=|>|=)\s*(?P<value>'[^']{0,64}'|[-+]?\d{1,20})\s*$", re.IGNORECASE)
_KINDS = {"x-opt-offset": "offset", "x-opt-enqueued-time": "time", "x-opt-enqueuedtimeutc": "time",
          "x-opt-sequence-number": "sequence"}


class FilterError(ValueError):
    pass


@dataclass(frozen=True)
class StartPosition:
    kind: str  # "start", "end", "offset", "time", "sequence"
    value: int = 0
    inclusive: bool = False


def parse_selector(text: str | None) -> StartPosition:
    if text is None or not text.strip():
        return StartPosition("start")
    if len(text) > 256:
        raise FilterError("selector filter is longer than 256 characters")
    match = _SELECTOR.match(text)
    if match is None:
        raise FilterError(f"unsupported selector filter {text!r}")
    kind = _KINDS[match["field"].lower()]
    raw = match["value"].strip("'")
    inclusive = match["op"] in (">=", "=")
    if kind == "offset" and raw == "@latest":
        return StartPosition("end")
    try:
        value = int(raw)
    except ValueError:
        raise FilterError(f"{match['field']} value {raw!r} is not a number") from None
    if kind == "offset" and value < 0:
        return StartPosition("start")
    return StartPosition(kind, value, inclusive)
