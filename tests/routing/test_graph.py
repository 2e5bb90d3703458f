"""`edgegen routes` drawings: Mermaid checked structurally, DOT rendered by Graphviz's own `dot`."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from edgegen.routing.graph import build_graph, to_dot, to_mermaid, to_text

TRICKY = {"modulesContent": {
    "$edgeAgent": {"properties.desired": {"modules": {"sensor": {}, "my-filter": {}, "idle": {}}}},
    "$edgeHub": {"properties.desired": {"schemaVersion": "1.1", "routes": {
        "r1": {"route": "FROM /messages/modules/sensor/outputs/out|1 WHERE a = \"x|y\" AND b <> 'q\"' "
                        "INTO BrokeredEndpoint('/modules/my-filter/inputs/in')", "priority": 2},
        "r2": "FROM /messages/modules/my-filter/* INTO $upstream",
        "r3": "FROM /messages INTO BrokeredEndpoint('/modules/ghost/inputs/x')",
        "r4": "FROM /twinChangeNotifications INTO $upstream",
        "r5": "FROM /* WHERE broken == 1 INTO $upstream",
    }}},
}}

NODE = re.compile(r'^\s*([A-Za-z0-9_]+)(\(\[|\[/|\[\(|\{\{|\[)"([^"]*)"(\]\)|/\]|\)\]|\}\}|\])$')
EDGE = re.compile(r'^\s*([A-Za-z0-9_]+) -->\|"([^"|]*)"\| ([A-Za-z0-9_]+)$')
SUBGRAPH = re.compile(r'^\s*subgraph ([A-Za-z0-9_]+)\["([^"]*)"\]$')


def check_mermaid(text: str) -> dict[str, Any]:
    lines = text.splitlines()
    assert lines[0] == "flowchart LR"
    nodes: dict[str, str] = {}
    edges: list[tuple[str, str, str]] = []
    depth = 0
    subgraphs: list[str] = []
    for line in lines[1:]:
        if m := SUBGRAPH.match(line):
            depth += 1
            subgraphs.append(m.group(2))
        elif line.strip() == "end":
            depth -= 1
            assert depth >= 0
        elif line.strip() == "direction TB":
            assert depth == 1
        elif m := NODE.match(line):
            assert m.group(1) not in nodes, f"node defined twice: {line}"
            nodes[m.group(1)] = m.group(3)
        elif m := EDGE.match(line):
            edges.append((m.group(1), m.group(2), m.group(3)))
        else:
            raise AssertionError(f"not valid flowchart syntax: {line!r}")
    assert depth == 0
    for src, _label, dst in edges:
        assert src in nodes and dst in nodes
    return {"nodes": nodes, "edges": edges, "subgraphs": subgraphs}


def test_mermaid_structure_for_the_repo_solution(repo_root: Path) -> None:
    manifest = json.loads((repo_root / "deployment.template.json").read_text())
    parsed = check_mermaid(to_mermaid(build_graph(manifest)))
    assert parsed["subgraphs"] == ["sensor", "inference", "monitor"]
    labels = [label.split("<br/>")[0] for _s, label, _d in parsed["edges"]]
    assert labels == ["sensorToInference", "inferenceToMonitor", "inferenceErrorsToMonitor", "monitorToIoTHub"]
    assert "$upstream (IoT Hub)" in parsed["nodes"].values()


def test_mermaid_escapes_quotes_and_pipes() -> None:
    parsed = check_mermaid(to_mermaid(build_graph(TRICKY)))
    r1 = next(label for _s, label, _d in parsed["edges"] if label.startswith("r1"))
    assert "#quot;x#124;y#quot;" in r1 and "priority 2" in r1
    assert "ghost" in parsed["subgraphs"]  # a module only routes know about is still drawn
    assert "twin changes" in parsed["nodes"].values()


def test_text_drawing_lists_routes_and_problems() -> None:
    text = to_text(build_graph(TRICKY))
    assert "r2: my-filter.all outputs -> $upstream (IoT Hub)" in text
    assert "unrouted module: idle" in text
    assert "not drawn: modulesContent.$edgeHub.properties.desired.routes.r5" in text


@pytest.mark.process
@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz 'dot' is not installed (apt install graphviz)")
@pytest.mark.parametrize("which", ["repo", "tricky"])
def test_dot_renders_with_graphviz(which: str, repo_root: Path, tmp_path: Path) -> None:
    manifest = json.loads((repo_root / "deployment.template.json").read_text()) if which == "repo" else TRICKY
    dot = to_dot(build_graph(manifest))
    svg = subprocess.run(["dot", "-Tsvg"], input=dot, capture_output=True, text=True, check=True, timeout=60).stdout
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    # every route label made it into the picture
    for name in (["sensorToInference", "monitorToIoTHub"] if which == "repo" else ["r1", "r2", "r3", "r4"]):
        assert f">{name}<" in svg
