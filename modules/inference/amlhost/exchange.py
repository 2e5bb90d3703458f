"""The two values every path through the host trades in: a ``ScoreRequest`` in, a ``Reply`` out.

HTTP requests, module messages and direct-method calls are all turned into a ``ScoreRequest`` (method, path, query,
headers, body) and answered with a ``Reply`` (status, headers, body), so the three share one decoding and one
encoding. ``headers`` is anything with a case-insensitive ``get`` and an ordered ``items()`` (aiohttp's
``CIMultiDictProxy``, or ``Headers`` here).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

__all__ = ["HeaderMap", "Headers", "Reply", "ScoreRequest", "media_type", "message_reply"]


class HeaderMap(Protocol):
    def get(self, key: str, default: None = None, /) -> str | None: ...

    def items(self) -> Iterable[tuple[str, str]]: ...


class Headers:
    """A small ordered, case-insensitive header list (for requests that did not come over HTTP)."""

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items = list(items)

    def get(self, key: str, default: None = None, /) -> str | None:
        lower = key.lower()
        return next((v for k, v in self._items if k.lower() == lower), default)

    def items(self) -> Iterator[tuple[str, str]]:
        return iter(self._items)


@dataclass(slots=True)
class ScoreRequest:
    method: str
    path: str  # as sent (percent-encoded), without the query
    query_string: str  # raw, still percent-encoded
    headers: HeaderMap
    body: bytes = b""
    remote: tuple[str, int] | None = None
    server: tuple[str, int] = ("127.0.0.1", 5001)

    @property
    def content_type(self) -> str | None:
        return self.headers.get("Content-Type")


@dataclass(slots=True)
class Reply:
    status: int
    headers: list[tuple[str, str]]  # in order; no Content-Length (the transport sets it)
    body: bytes = b""
    error: BaseException | None = None  # what went wrong, for logs, the twin and the module's errors output
    run_ms: float | None = None  # time spent in run(), when it was called
    from_script: bool = False  # headers set by the script's own response object (which may hold any name)

    def header(self, name: str) -> str | None:
        lower = name.lower()
        return next((v for k, v in self.headers if k.lower() == lower), None)

    @property
    def content_type(self) -> str | None:
        return self.header("Content-Type")


def media_type(content_type: str | None) -> str:
    """``application/json; charset=utf-8`` → ``application/json`` (lower case), as Werkzeug's ``mimetype``."""
    return content_type.split(";", 1)[0].strip().lower() if content_type else ""


def message_reply(status: int, message: str, *, run_failed: bool = False,
                  error: BaseException | None = None) -> Reply:
    """azmlinfsrv's error shape: ``{"message": ...}`` as JSON with ``x-ms-run-function-failed``."""
    return Reply(status, [("Content-Type", "application/json"),
                          ("x-ms-run-function-failed", "True" if run_failed else "False")],
                 json.dumps({"message": message}).encode(), error=error)
