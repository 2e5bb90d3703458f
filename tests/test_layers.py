"""The house's floors, kept by reading every import (``ast``; nothing is imported or run).

``LAYERS`` below is the one place the layer order is written down, lowest floor first. A module of edgegen may
import modules of its own floor and of the floors below it, never above: the generator never reaches up to the
images area, the hub client never to the demo. Every import counts, also those inside functions and under
``if TYPE_CHECKING:`` (a type is a dependency too). ``DOORS`` narrows a few stairs further: what one room may use
of a lower one. Besides the floors: no import cycles between modules, and the standalone edge modules in
``modules/`` import nothing of edgegen.

When a new room comes, give it a floor here (the test names every module without one); when an import breaks a
rule, move the code to the floor where both sides may use it, rather than widening the rule.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "edgegen"

# (floor, module prefixes), lowest first. A prefix matches the module itself and everything below it.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("errors", ("edgegen.errors",)),  # EdgegenError and Location: every area's errors derive from them
    ("routing", ("edgegen.routing",)),  # edgeHub's route language: imports nothing of ours but errors
    ("common", ("edgegen.common",)),  # primitives every area may use: SAS, certificates, loopback addresses
    ("generator", ("edgegen.generator",)),  # solution on disk, rendering, validation (uses routing)
    ("models", ("edgegen.models",)),  # model registry, Azure ML layout, convert, profile (the generator's ModelSource)
    ("images", ("edgegen.images",)),  # build and push with the Docker Engine API (image tags from the generator)
    ("pipeline", ("edgegen.pipeline",)),  # genconfig end to end: the generator's render + the images area's facts
    ("local", ("edgegen.local",)),  # the local stack: MQTT gateway, edge hub router, agent, the IoT Hub stand-in
    ("hub", ("edgegen.hub",)),  # the IoT Hub service client: deploy, configurations, twins, fleet, monitor
    ("hublink", ("edgegen.hublink",)),  # the device runtime joined to a hub (what edgeAgent/edgeHub do)
    ("orchestration", ("edgegen.orchestration",)),  # whole workflows over every room: `edgegen up`
    ("cli", ("edgegen.cli", "edgegen.__main__")),  # argument parsing, output, exit codes
)
# the package's own __init__ only re-exports EdgegenError
ROOT_FLOOR = "errors"

# (importer prefix, imported prefix) -> the only modules of the imported room that the importer may use
DOORS: dict[tuple[str, str], frozenset[str]] = {
    # the hub client knows the stand-in only by its public contract: hub.json discovery and the live feed
    ("edgegen.hub", "edgegen.local"): frozenset({"edgegen.local.hubstandin"}),
}


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str
    line: int

    def __str__(self) -> str:
        return f"{self.importer} (line {self.line}) imports {self.imported}"


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules(root: Path) -> dict[str, Path]:
    return {_module_name(p, root): p for p in sorted(root.rglob("*.py"))}


def _imports(name: str, path: Path, known: set[str]) -> Iterator[Import]:
    """Every ``import``/``from … import`` of an ``edgegen`` module in ``path``, resolved to module names:
    ``from pkg import sub`` names the submodule ``pkg.sub`` when there is one, else ``pkg``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "edgegen":
                    yield Import(name, alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base if is_package else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            if module.split(".")[0] != "edgegen":
                continue
            for alias in node.names:
                sub = f"{module}.{alias.name}"
                yield Import(name, sub if sub in known else module, node.lineno)


def _floor(module: str) -> int | None:
    if module == "edgegen":
        return [n for n, _ in LAYERS].index(ROOT_FLOOR)
    best: tuple[int, int] | None = None  # (prefix length, floor)
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), index)
    return best[1] if best is not None else None


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


MODULES = _modules(PACKAGE)
IMPORTS = [i for name, path in MODULES.items() for i in _imports(name, path, set(MODULES))]


def test_every_module_has_a_floor() -> None:
    assert MODULES, f"no modules found under {PACKAGE}"
    homeless = sorted(m for m in MODULES if _floor(m) is None)
    assert not homeless, f"modules without a floor (add their room to LAYERS in {__file__}): {homeless}"


def test_every_import_names_a_module_that_exists() -> None:
    missing = [str(i) for i in IMPORTS if i.imported not in MODULES]
    assert not missing, "imports of edgegen modules that do not exist:\n" + "\n".join(missing)


def test_no_floor_imports_a_higher_one() -> None:
    names = [n for n, _ in LAYERS]
    upward = []
    for i in IMPORTS:
        low, high = _floor(i.importer), _floor(i.imported)
        if low is not None and high is not None and high > low:
            upward.append(f"{i}: floor {names[low]} reaches up to floor {names[high]}")
    assert not upward, "imports against the layer order (tests/test_layers.py LAYERS):\n" + "\n".join(upward)


def test_doors() -> None:
    through_walls = []
    for (importer, room), allowed in DOORS.items():
        for i in IMPORTS:
            if _within(i.importer, importer) and _within(i.imported, room) and i.imported not in allowed:
                through_walls.append(f"{i}: {importer} may use only {sorted(allowed)} of {room}")
    assert not through_walls, "\n".join(through_walls)


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            advanced = False
            for succ in successors:
                if succ not in index:
                    index[succ] = low[succ] = counter
                    counter += 1
                    stack.append(succ)
                    on_stack.add(succ)
                    work.append((succ, iter(sorted(edges.get(succ, ())))))
                    advanced = True
                    break
                if succ in on_stack:
                    low[node] = min(low[node], index[succ])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_cycles() -> None:
    """Two modules never import each other, directly or around a circle (a module importing its own package's
    ``__init__`` does not count: Python runs that first anyway)."""
    edges: dict[str, set[str]] = {m: set() for m in MODULES}
    for i in IMPORTS:
        if i.imported != i.importer and not _within(i.importer, i.imported):
            edges[i.importer].add(i.imported)
    cycles = _cycles(edges)
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


@pytest.mark.parametrize("folder", sorted(p.name for p in (REPO / "modules").iterdir() if p.is_dir()))
def test_edge_modules_import_nothing_of_edgegen(folder: str) -> None:
    """The modules in modules/ run on a device with azure-iot-device only."""
    root = REPO / "modules" / folder
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            found += [f"{path.relative_to(REPO)}:{node.lineno} imports {n}" for n in names
                      if n.split(".")[0] == "edgegen"]
    assert not found, "\n".join(found)


def test_the_checker_sees_an_upward_import(tmp_path: Path) -> None:
    """The rules catch what they are for: a generator module importing the images area, and a cycle."""
    pkg = tmp_path / "edgegen"
    (pkg / "generator").mkdir(parents=True)
    (pkg / "images").mkdir()
    for f in ("__init__.py", "generator/__init__.py", "images/__init__.py"):
        (pkg / f).write_text("")
    (pkg / "generator" / "render.py").write_text("def f():\n    from edgegen.images import push\n")
    (pkg / "images" / "push.py").write_text("from edgegen.generator.render import f\n")
    modules = _modules(pkg)
    imports = [i for name, path in modules.items() for i in _imports(name, path, set(modules))]
    assert [(i.importer, i.imported, i.line) for i in imports] == [
        ("edgegen.generator.render", "edgegen.images.push", 2), ("edgegen.images.push", "edgegen.generator.render", 1)]
    floors = {i.importer: (_floor(i.importer), _floor(i.imported)) for i in imports}
    up, down = floors["edgegen.generator.render"], floors["edgegen.images.push"]
    assert up[1] > up[0] and down[1] < down[0]  # type: ignore[operator]
    edges = {m: {i.imported for i in imports if i.importer == m} for m in modules}
    assert _cycles(edges) == [["edgegen.generator.render", "edgegen.images.push"]]
