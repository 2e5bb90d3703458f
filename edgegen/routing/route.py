"""Routes: ``[SELECT *] FROM <source> [WHERE <condition>] INTO <sink>`` and their sinks (endpoints)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from edgegen.routing.ast import Node
from edgegen.routing.errors import RouteError
from edgegen.routing.lexer import Token, TokenKind, tokenize
from edgegen.routing.parser import Parser
from edgegen.routing.sources import normalize_source, source_matches

__all__ = [
    "Endpoint",
    "ModuleInputEndpoint",
    "Route",
    "UpstreamEndpoint",
    "brokered_endpoint",
    "parse_route",
]

T = TokenKind


@dataclass(frozen=True)
class UpstreamEndpoint:
    """``$upstream``: IoT Hub."""

    def __str__(self) -> str:
        return "$upstream"

    @property
    def id(self) -> str:
        return "$upstream"


@dataclass(frozen=True)
class ModuleInputEndpoint:
    """``BrokeredEndpoint("/modules/{module}/inputs/{input}")``: a module's input."""

    module: str
    input: str

    def __str__(self) -> str:
        return f'BrokeredEndpoint("/modules/{self.module}/inputs/{self.input}")'

    @property
    def id(self) -> str:
        return f"{self.module}/{self.input}"


Endpoint = UpstreamEndpoint | ModuleInputEndpoint


@dataclass(frozen=True)
class Route:
    """A parsed route. ``source`` is edgeHub's normalised FROM path (one trailing '/'), ``condition`` the WHERE
    text as written (None when absent), ``sink`` the endpoint, ``text`` the whole route."""

    source: str
    condition: str | None
    sink: Endpoint
    text: str
    source_text: str = ""
    condition_ast: Node | None = field(default=None, compare=False, repr=False)
    condition_offset: int = field(default=0, compare=False, repr=False)

    def matches_source(self, msg_source: str) -> bool:
        return source_matches(self.source, msg_source)

    @property
    def source_module(self) -> str | None:
        """The module named in the FROM path (``/messages/modules/{m}/...``), or None."""
        parts = self.source.strip("/").split("/")
        if len(parts) >= 3 and parts[0].lower() == "messages" and parts[1].lower() == "modules" and parts[2] != "*":
            return parts[2]
        return None

    @property
    def source_output(self) -> str | None:
        parts = self.source.strip("/").split("/")
        if len(parts) >= 5 and parts[3].lower() == "outputs" and parts[4] != "*":
            return parts[4]
        return None


def brokered_endpoint(address: str, *, text: str = "", column: int | None = None) -> ModuleInputEndpoint:
    """edgeHub's split of a BrokeredEndpoint address: drop one leading and one trailing '/', then exactly 4 parts;
    the module is part 2 and the input part 4 (parts 1 and 3 are not checked by edgeHub)."""
    inner = address[1:] if address.startswith("/") else address
    inner = inner[:-1] if inner.endswith("/") else inner
    parts = inner.split("/")
    if len(parts) != 4:
        raise RouteError(
            f"BrokeredEndpoint address {address!r} must have the form /modules/<module>/inputs/<input>",
            text=text,
            column=column,
            hint='write INTO BrokeredEndpoint("/modules/<module>/inputs/<input>")',
        )
    if not parts[1] or not parts[3]:
        raise RouteError(f"BrokeredEndpoint address {address!r} has an empty module or input name", text=text,
                         column=column, hint='write INTO BrokeredEndpoint("/modules/<module>/inputs/<input>")')
    return ModuleInputEndpoint(parts[1], parts[3])


class _RouteParser(Parser):
    def parse(self) -> Route:
        tok = self.peek()
        if tok.kind is T.SELECT:
            self.advance()
            self.expect(T.STAR, "'*' after SELECT")
        self.expect(T.FROM, "FROM" if tok.kind is not T.SELECT else "FROM after SELECT *")
        source_text = self._path()
        condition: str | None = None
        cond_ast: Node | None = None
        cond_offset = 0
        if self.peek().kind is T.WHERE:
            self.advance()
            first = self.peek()
            if first.kind is T.INTO:
                raise self.error(first, "empty WHERE condition", "a condition after WHERE")
            cond_ast = self.condition(frozenset({T.INTO}))
            last = self.tokens[self.pos - 1]
            condition = self.text[first.start : last.end]
            cond_offset = first.start
        self.expect(T.INTO, "WHERE or INTO" if condition is None else "INTO")
        sink = self._sink()
        end = self.peek()
        if end.kind is not T.EOF:
            raise self.error(end, f"unexpected {end.text!r} after the sink", "the end of the route")
        return Route(
            source=normalize_source(source_text),
            condition=condition,
            sink=sink,
            text=self.text,
            source_text=source_text,
            condition_ast=cond_ast,
            condition_offset=cond_offset,
        )

    def _path(self) -> str:
        parts: list[str] = []
        while self.peek().kind is T.SLASH:
            self.advance()
            item = self.peek()
            if item.kind not in (T.ID, T.STAR):
                raise self.unexpected(item, "a path segment (a name or '*') after '/'")
            self.advance()
            parts.append("/" + item.text)
        if not parts:
            raise self.unexpected(self.peek(), "a source path such as /messages/modules/<module>/outputs/<output>")
        return "".join(parts)

    def _sink(self) -> Endpoint:
        tok = self.peek()
        if tok.kind is T.SYS_PROP:
            self.advance()
            if tok.text.lower() != "$upstream":
                raise self.error(tok, f"unknown system endpoint {tok.text!r}", None,
                                 "edgeHub's only system endpoint is $upstream")
            return UpstreamEndpoint()
        if tok.kind is T.ID:
            self.advance()
            self.expect(T.LPAREN, f"'(' after {tok.text}")
            addr = self.expect(T.STRING, 'a quoted address such as "/modules/<module>/inputs/<input>"')
            self.expect(T.RPAREN, "')'")
            if tok.text.lower() != "brokeredendpoint":
                raise self.error(tok, f"unknown endpoint function {tok.text!r}", None,
                                 'edgeHub only knows BrokeredEndpoint("/modules/<module>/inputs/<input>")')
            return brokered_endpoint(addr.text[1:-1], text=self.text, column=addr.start + 1)
        raise self.unexpected(tok, '$upstream or BrokeredEndpoint("/modules/<module>/inputs/<input>")')


def _tokens(text: str) -> list[Token]:
    return tokenize(text)


def parse_route(text: str) -> Route:
    """Parse one route string; raise RouteError (with a caret and what was expected) when it is not valid.

    The condition's syntax is checked here; its types are checked when it is compiled
    (``compile_condition`` / ``RouteTable``).
    """
    if not isinstance(text, str):
        raise RouteError(f"a route must be a string, not {type(text).__name__}")
    if not text.strip():
        raise RouteError("empty route", text=text, column=1, expected="FROM <source> [WHERE <condition>] INTO <sink>")
    if type(text) is not str:  # a str subclass may compare equal to a different route: never share a cache entry
        return _RouteParser(text, _tokens(text)).parse()
    return _parse_cached(text)


@lru_cache(maxsize=4096)
def _parse_cached(text: str) -> Route:
    """Routes are immutable values of their text: parse each distinct text once (a fleet validates the same
    routes in thousands of manifests; validation and the lint both parse them). Errors are not cached."""
    return _RouteParser(text, _tokens(text)).parse()
