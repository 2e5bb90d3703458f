"""Send the same HTTP request to two hosts and list every difference between their answers.

What is compared: the status, every response header except the transport's own (``Server``, ``Date``,
``Connection``, ``Keep-Alive``, ``Content-Length``, ``Transfer-Encoding``), values in order per header name, and the
body byte for byte. Values that differ by nature are normalised first: a request id the server made up (when the
client sent none) becomes ``<generated>`` wherever it appears, and ``x-ms-run-fn-exec-ms`` becomes ``<ms>`` when
it is a number with three decimals, as azmlinfsrv formats it; the methods in ``Allow`` are sorted.
"""

from __future__ import annotations

import fnmatch
import http.client
import re
from dataclasses import dataclass
from typing import Any

__all__ = ["Allowed", "Call", "Difference", "Exchange", "compare", "send", "unexplained", "unused"]

TRANSPORT = frozenset({"server", "date", "connection", "keep-alive", "content-length", "transfer-encoding"})
MS = re.compile(r"^\d+\.\d{3}$")


@dataclass(frozen=True)
class Call:
    name: str
    method: str
    target: str  # path and query, as sent
    expect: int  # the status azmlinfsrv is expected to give: checks that the scenario is the one meant
    body: bytes | None = None
    headers: tuple[tuple[str, str], ...] = ()
    chunked: bool = False


@dataclass(frozen=True)
class Exchange:
    status: int  # 0: the connection closed without an answer
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


@dataclass(frozen=True)
class Difference:
    script: str
    call: str
    aspect: str  # "status", "body", "header <name>"
    theirs: Any
    ours: Any

    def line(self) -> str:
        return (f"{self.script:18} {self.call:24} {self.aspect:28} azmlinfsrv={_short(self.theirs)}  "
                f"ours={_short(self.ours)}")


@dataclass(frozen=True)
class Allowed:
    """A difference kept on purpose; ``id`` is named in docs/modules.md, which says why."""

    id: str
    scripts: str  # fnmatch patterns; "a|b" for either
    calls: str
    aspect: str
    why: str
    hosts: str = "*"

    def matches(self, difference: Difference, host: str) -> bool:
        return (_match(host, self.hosts) and _match(difference.script, self.scripts)
                and _match(difference.call, self.calls) and _match(difference.aspect, self.aspect))


def _match(value: str, patterns: str) -> bool:
    return any(fnmatch.fnmatchcase(value, pattern) for pattern in patterns.split("|"))


def _short(value: Any, limit: int = 90) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def send(address: tuple[str, int], call: Call, timeout: float = 30.0) -> Exchange:
    conn = http.client.HTTPConnection(*address, timeout=timeout)
    try:
        conn.putrequest(call.method, call.target)
        for name, value in call.headers:
            conn.putheader(name, value)
        if call.body is not None:
            conn.putheader(*(("Transfer-Encoding", "chunked") if call.chunked
                             else ("Content-Length", str(len(call.body)))))
        conn.endheaders()
        if call.body is not None:
            if call.chunked:
                half = len(call.body) // 2
                for part in (call.body[:half], call.body[half:]):
                    if part:
                        conn.send(b"%x\r\n%s\r\n" % (len(part), part))
                conn.send(b"0\r\n\r\n")
            else:
                conn.send(call.body)
        response = conn.getresponse()
        return Exchange(response.status, tuple(response.getheaders()), response.read())
    except (ConnectionError, http.client.RemoteDisconnected):
        return Exchange(0, (), b"")
    finally:
        conn.close()


def _normalised(call: Call, exchange: Exchange) -> dict[str, list[str]]:
    sent = {name.lower() for name, _ in call.headers}
    generated = exchange.header("x-request-id") if "x-request-id" not in sent else None
    headers: dict[str, list[str]] = {}
    for name, value in exchange.headers:
        key = name.lower()
        if key in TRANSPORT:
            continue
        if generated and value == generated:
            value = "<generated>"
        elif key == "x-ms-run-fn-exec-ms" and MS.match(value):
            value = "<ms>"
        elif key == "allow":  # Flask fills it from a set: its order changes from process to process
            value = ", ".join(sorted(part.strip() for part in value.split(",")))
        headers.setdefault(key, []).append(value)
    return headers


def compare(script: str, call: Call, theirs: Exchange, ours: Exchange) -> list[Difference]:
    found: list[Difference] = []
    if theirs.status != ours.status:
        found.append(Difference(script, call.name, "status", theirs.status, ours.status))
    mine, other = _normalised(call, ours), _normalised(call, theirs)
    for name in sorted(set(mine) | set(other)):
        if mine.get(name) != other.get(name):
            found.append(Difference(script, call.name, f"header {name}", other.get(name), mine.get(name)))
    if theirs.body != ours.body:
        found.append(Difference(script, call.name, "body", theirs.body, ours.body))
    return found


def unexplained(differences: list[Difference], allowed: tuple[Allowed, ...], host: str) -> list[Difference]:
    return [d for d in differences if not any(a.matches(d, host) for a in allowed)]


def unused(differences: list[Difference], allowed: tuple[Allowed, ...], host: str) -> list[Allowed]:
    """Allow-list entries for ``host`` that no difference needed: stale, to be removed."""
    return [a for a in allowed if _match(host, a.hosts) and not any(a.matches(d, host) for d in differences)]
