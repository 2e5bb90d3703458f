"""The message flow of a manifest as a graph, drawn as text, Mermaid or Graphviz DOT. Pure: data in, text out."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from edgegen.routing.lint import manifest_routes
from edgegen.routing.route import ModuleInputEndpoint, Route
from edgegen.routing.table import DEFAULT_PRIORITY, CompiledRoute

__all__ = ["Edge", "FlowGraph", "Port", "build_graph", "render", "to_dot", "to_mermaid", "to_text"]


@dataclass(frozen=True)
class Port:
    """A place messages leave or enter: a module's output/input, $upstream, or a wider source."""

    id: str
    label: str
    module: str | None = None  # the module the port belongs to (drawn inside its box)
    kind: str = "output"  # output | input | upstream | source


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    route: str
    condition: str | None
    priority: int | None
    ttl_secs: int | None

    def label(self) -> str:
        parts = [self.route]
        if self.condition:
            parts.append(f"WHERE {self.condition}")
        if self.priority is not None:
            parts.append(f"priority {self.priority}")
        return "\n".join(parts)


@dataclass
class FlowGraph:
    modules: list[str]
    ports: dict[str, Port] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # routes that did not compile (drawn nowhere)

    def add(self, port: Port) -> str:
        self.ports.setdefault(port.id, port)
        return port.id


def _ident(*parts: str) -> str:
    return "_".join(re.sub(r"[^A-Za-wyz0-9]", lambda m: f"x{ord(m.group()):x}x", p) for p in parts)


def _source_port(route: Route) -> Port:
    parts = [p for p in route.source.strip("/").split("/") if p]
    low = [p.lower() for p in parts]
    module, output = route.source_module, route.source_output
    if module is not None and output is not None:
        return Port(_ident("out", module, output), output, module, "output")
    if module is not None:
        return Port(_ident("out", module, "all"), "all outputs", module, "output")
    if not parts:
        return Port("src_everything", "everything (/*)", None, "source")
    if low == ["messages"]:
        return Port("src_messages", "all messages (/messages)", None, "source")
    if low == ["messages", "modules"]:
        return Port("src_modules", "all modules (/messages/modules)", None, "source")
    if low == ["twinchangenotifications"]:
        return Port("src_twin", "twin changes", None, "source")
    return Port(_ident("src", route.source), route.source, None, "source")


def build_graph(manifest: Mapping[str, Any]) -> FlowGraph:
    info = manifest_routes(manifest)
    graph = FlowGraph(list(info.modules))
    for name, r in info.compiled.items():
        graph.edges.append(_edge(graph, name, r))
    graph.problems = [f"{f.path}: {f.message.splitlines()[0]}" for f in info.errors]
    return graph


def _edge(graph: FlowGraph, name: str, r: CompiledRoute) -> Edge:
    src = graph.add(_source_port(r.route))
    sink = r.route.sink
    if isinstance(sink, ModuleInputEndpoint):
        if sink.module not in graph.modules:
            graph.modules.append(sink.module)
        dst = graph.add(Port(_ident("in", sink.module, sink.input), sink.input, sink.module, "input"))
    else:
        dst = graph.add(Port("upstream", "$upstream (IoT Hub)", None, "upstream"))
    module = r.route.source_module
    if module is not None and module not in graph.modules:
        graph.modules.append(module)
    priority = None if r.priority == DEFAULT_PRIORITY else r.priority
    return Edge(src, dst, name, r.route.condition, priority, r.ttl_secs)


# -- text ------------------------------------------------------------------------------------------------
def to_text(graph: FlowGraph) -> str:
    lines = ["modules: " + (", ".join(graph.modules) or "(none)"), "routes:"]
    for e in graph.edges:
        src, dst = graph.ports[e.source], graph.ports[e.target]
        extra = []
        if e.priority is not None:
            extra.append(f"priority {e.priority}")
        if e.ttl_secs is not None:
            extra.append(f"ttl {e.ttl_secs}s")
        tail = f"  [{', '.join(extra)}]" if extra else ""
        lines.append(f"  {e.route}: {_port_text(src)} -> {_port_text(dst)}{tail}")
        if e.condition:
            lines.append(f"      WHERE {e.condition}")
    if not graph.edges:
        lines.append("  (none)")
    for m in graph.modules:
        if not any(graph.ports[e.source].module == m or graph.ports[e.target].module == m for e in graph.edges):
            lines.append(f"unrouted module: {m}")
    lines += [f"not drawn: {p}" for p in graph.problems]
    return "\n".join(lines)


def _port_text(p: Port) -> str:
    if p.module is None:
        return p.label
    return f"{p.module}/{p.label}" if p.kind == "input" else f"{p.module}.{p.label}"


# -- mermaid ---------------------------------------------------------------------------------------------
def _mm(text: str) -> str:
    return (text.replace("&", "#amp;").replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")
            .replace("|", "#124;").replace("\n", "<br/>"))


def to_mermaid(graph: FlowGraph) -> str:
    lines = ["flowchart LR"]
    for m in graph.modules:
        lines.append(f'  subgraph {_ident("mod", m)}["{_mm(m)}"]')
        lines.append("    direction TB")
        ports = [p for p in graph.ports.values() if p.module == m]
        for p in ports:
            shape = f'(["{_mm(p.label)}"])' if p.kind == "output" else f'[/"{_mm(p.label)}"/]'
            lines.append(f"    {p.id}{shape}")
        if not ports:
            lines.append(f'    {_ident("mod", m, "idle")}["(no routes)"]')
        lines.append("  end")
    for p in graph.ports.values():
        if p.module is None:
            shape = f'[("{_mm(p.label)}")]' if p.kind == "upstream" else f'{{{{"{_mm(p.label)}"}}}}'
            lines.append(f"  {p.id}{shape}")
    for e in graph.edges:
        lines.append(f'  {e.source} -->|"{_mm(e.label())}"| {e.target}')
    return "\n".join(lines) + "\n"


# -- DOT -------------------------------------------------------------------------------------------------
def _dq(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(graph: FlowGraph) -> str:
    lines = ["digraph routes {", "  rankdir=LR;", '  node [fontname="Helvetica", fontsize=10];',
             '  edge [fontname="Helvetica", fontsize=9];']
    for m in graph.modules:
        lines.append(f"  subgraph {_dq('cluster_' + m)} {{")
        lines.append(f"    label={_dq(m)}; style=rounded;")
        ports = [p for p in graph.ports.values() if p.module == m]
        for p in ports:
            shape = "ellipse" if p.kind == "output" else "box"
            lines.append(f"    {p.id} [label={_dq(p.label)}, shape={shape}];")
        if not ports:
            lines.append(f'    {_ident("mod", m, "idle")} [label="(no routes)", shape=plaintext];')
        lines.append("  }")
    for p in graph.ports.values():
        if p.module is None:
            shape = "cylinder" if p.kind == "upstream" else "hexagon"
            lines.append(f"  {p.id} [label={_dq(p.label)}, shape={shape}];")
    for e in graph.edges:
        lines.append(f"  {e.source} -> {e.target} [label={_dq(e.label())}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(manifest: Mapping[str, Any], fmt: str = "text") -> str:
    graph = build_graph(manifest)
    return {"text": to_text, "mermaid": to_mermaid, "dot": to_dot}[fmt](graph)
