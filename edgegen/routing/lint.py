"""Route lint over a deployment manifest: errors edgeHub would reject and routes that cannot work as meant.

Used by ``edgegen validate`` and ``edgegen routes``. Pure: manifest dict in, findings out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from edgegen.routing.ast import Call, Node, SysProperty, walk
from edgegen.routing.errors import RouteError
from edgegen.routing.route import ModuleInputEndpoint
from edgegen.routing.sources import normalize_source
from edgegen.routing.table import ROUTE_NAME, CompiledRoute, compile_route, route_spec
from edgegen.routing.values import TRUE

__all__ = ["LintFinding", "ManifestRoutes", "lint_routes", "manifest_routes"]

Severity = Literal["error", "warning", "info"]
HUB = "modulesContent.$edgeHub.properties.desired"
AGENT = "modulesContent.$edgeAgent.properties.desired"


@dataclass(frozen=True)
class LintFinding:
    severity: Severity
    path: str  # JSON path into the manifest
    message: str
    hint: str | None = None

    def render(self) -> str:
        text = f"{self.severity}: {self.path}: {self.message}"
        return text + (f"\n  hint: {self.hint}" if self.hint else "")


@dataclass
class ManifestRoutes:
    """What the manifest says about routing: modules, raw routes, compiled routes and their errors."""

    modules: list[str]
    schema_version: str
    raw: dict[str, Any]
    compiled: dict[str, CompiledRoute]
    errors: list[LintFinding]


def _desired(content: Mapping[str, Any], module: str) -> Mapping[str, Any]:
    entry = content.get(module)
    if not isinstance(entry, Mapping):
        return {}
    desired = entry.get("properties.desired")
    if desired is None and isinstance(entry.get("properties"), Mapping):
        desired = entry["properties"].get("desired")
    return desired if isinstance(desired, Mapping) else {}


def _modules_content(manifest: Mapping[str, Any]) -> Mapping[str, Any]:
    content = manifest.get("modulesContent")
    if content is None and isinstance(manifest.get("content"), Mapping):
        content = manifest["content"].get("modulesContent")
    return content if isinstance(content, Mapping) else {}


def manifest_routes(manifest: Mapping[str, Any]) -> ManifestRoutes:
    """Compile every route of a manifest; errors become findings instead of exceptions."""
    content = _modules_content(manifest)
    agent = _desired(content, "$edgeAgent")
    hub = _desired(content, "$edgeHub")
    mods = agent.get("modules")
    modules = list(mods) if isinstance(mods, Mapping) else []
    version = str(hub.get("schemaVersion", "1.1"))
    routes = hub.get("routes")
    errors: list[LintFinding] = []
    compiled: dict[str, CompiledRoute] = {}
    raw: dict[str, Any] = dict(routes) if isinstance(routes, Mapping) else {}
    if routes is not None and not isinstance(routes, Mapping):
        errors.append(LintFinding("error", f"{HUB}.routes", "routes must be an object of name → route"))
    for name, value in raw.items():
        path = f"{HUB}.routes.{name}"
        if not ROUTE_NAME.match(name):
            errors.append(LintFinding("error", path, f"route name {name!r} may not contain '.', '$', '#' or spaces",
                                      "rename the route"))
            continue
        try:
            text, priority, ttl = route_spec(name, value, version, path)
            compiled[name] = compile_route(name, text, priority, ttl, path)
        except RouteError as exc:
            errors.append(LintFinding("error", exc.location.json_path or path if exc.location else path,
                                      _error_text(exc), exc.hint))
    return ManifestRoutes(modules, version, raw, compiled, errors)


def _error_text(exc: RouteError) -> str:
    text = exc.message
    if exc.column is not None and exc.text:
        caret = " " * (exc.column - 1) + "^"
        text += f" (column {exc.column})\n    {exc.text}\n    {caret}"
    return text


def _env_content_type(content: Mapping[str, Any], module: str) -> str | None:
    mods = _desired(content, "$edgeAgent").get("modules")
    entry = mods.get(module) if isinstance(mods, Mapping) else None
    env = entry.get("env") if isinstance(entry, Mapping) else None
    value = env.get("CONTENT_TYPE") if isinstance(env, Mapping) else None
    if isinstance(value, Mapping):
        value = value.get("value")
    return value if isinstance(value, str) else None


def lint_routes(manifest: Mapping[str, Any], *, content_types: Mapping[str, str] | None = None,
                messaging: Mapping[str, bool] | None = None) -> list[LintFinding]:
    """Findings about a manifest's routes.

    ``content_types`` declares what a module sends: keys ``"module"`` or ``"module/output"``, values a MIME type.
    A module's ``env.CONTENT_TYPE.value`` in the manifest counts as a declaration too.
    ``messaging`` says, per module, whether its code sends or receives edgeHub messages (when the caller can
    see the code): a module that does, with no route to or from it, is a warning; otherwise that is only an info
    (many modules never use edgeHub messaging: HTTP servers, databases, brokers, agents).
    """
    info = manifest_routes(manifest)
    findings = list(info.errors)
    modules = set(info.modules)
    content = _modules_content(manifest)
    lower = {m.lower(): m for m in modules}
    routed: set[str] = set()

    for name, r in info.compiled.items():
        path = f"{HUB}.routes.{name}"
        sink = r.route.sink
        src_mod = r.route.source_module
        if src_mod is not None:
            routed.add(src_mod.lower())
            if modules and src_mod not in modules:
                near = f"; did you mean {lower[src_mod.lower()]!r}?" if src_mod.lower() in lower else ""
                findings.append(LintFinding("warning", path, f"route reads from module {src_mod!r}, which is not in "
                                            f"{AGENT}.modules{near}", "fix the FROM path or add the module"))
        if isinstance(sink, ModuleInputEndpoint):
            routed.add(sink.module.lower())
            if sink.module not in modules:
                near = f" (did you mean {lower[sink.module.lower()]!r}?)" if sink.module.lower() in lower else ""
                # edgeHub accepts it (messages wait in its store until their time-to-live): a warning, as in
                # `edgegen validate`, so one finding has one severity everywhere
                findings.append(LintFinding("warning", path, f"route delivers to module {sink.module!r}, which does "
                                            f"not exist in {AGENT}.modules{near}",
                                            "module names are case-sensitive; fix the BrokeredEndpoint address"))
        if "*" in r.route.source_text.rstrip("*"):
            findings.append(LintFinding("warning", path, f"FROM {r.route.source_text} has '*' before the end: it "
                                        "matches a path segment literally named '*', so this route takes nothing",
                                        "edgeHub only treats a trailing '*' as a wildcard; name the module/output, "
                                        "or end the path with /* to take everything below it"))
        if r.condition is not None and _is_defined_on_body(r.condition.ast):
            findings.append(LintFinding("info", path, "is_defined($body.…) is true for every JSON body: a missing "
                                        "path is null, not undefined", "test presence with $body.x <> null or "
                                        "NOT is_null($body.x)"))
        if r.condition is not None and r.condition.is_constant and r.condition.constant_value is not TRUE:
            findings.append(LintFinding("warning", path, f"condition {r.route.condition!r} is always "
                                        f"{r.condition.constant_value}: this route never delivers anything",
                                        "only a condition that is true routes a message; remove the route or fix "
                                        "the condition"))
        if r.condition is not None and r.condition.uses_body and src_mod is not None:
            declared = _declared(content_types or {}, content, src_mod, r.route.source_output)
            if declared is not None and declared.split(";")[0].strip().lower() != "application/json":
                findings.append(LintFinding("warning", path, f"condition queries $body but module {src_mod!r} is "
                                            f"declared to send {declared!r}",
                                            "$body queries need contentType application/json with a utf-8/16/32 "
                                            "contentEncoding; on other messages they are undefined and the route "
                                            "never fires"))

    findings += _duplicates(info.compiled)
    sources = [normalize_source(r.route.source).lower() for r in info.compiled.values()]
    for m in info.modules:
        if m.lower() in routed or _wildcard_covers(sources, m):
            continue
        uses = (messaging or {}).get(m)
        if uses:
            findings.append(LintFinding("warning", f"{AGENT}.modules.{m}",
                                        f"module {m!r} has no route to or from it, but its code sends or receives "
                                        "edgeHub messages", "its messages go nowhere and nothing reaches its "
                                        "inputs; add a route"))
        else:
            findings.append(LintFinding("info", f"{AGENT}.modules.{m}", f"module {m!r} has no route to or from it",
                                        "fine for a module that does not use edgeHub messaging; otherwise add a "
                                        "route"))
    return findings


def _wildcard_covers(sources: list[str], module: str) -> bool:
    """Whether a route's FROM takes this module's outputs without naming it (``/messages/*``, ``/messages``,
    ``/messages/modules/*``): edgeHub matches a normalized FROM path as a prefix of the message source."""
    outputs = f"/messages/modules/{module.lower()}/outputs/"
    return any(outputs.startswith(src) for src in sources)


def _is_defined_on_body(node: Node) -> bool:
    for n in walk(node):
        if isinstance(n, Call) and n.name.lower() == "is_defined" and len(n.args) == 1:
            arg = n.args[0]
            if isinstance(arg, SysProperty) and arg.name.lower().startswith("body."):
                return True
    return False


def _declared(explicit: Mapping[str, str], content: Mapping[str, Any], module: str, output: str | None) -> str | None:
    if output is not None and f"{module}/{output}" in explicit:
        return explicit[f"{module}/{output}"]
    if module in explicit:
        return explicit[module]
    return _env_content_type(content, module)


def _overlap(a: str, b: str) -> bool:
    na, nb = normalize_source(a).lower(), normalize_source(b).lower()
    return na.startswith(nb) or nb.startswith(na)


def _duplicates(routes: dict[str, CompiledRoute]) -> list[LintFinding]:
    out: list[LintFinding] = []
    items = list(routes.values())
    for i, a in enumerate(items):
        for b in items[i + 1 :]:
            if a.route.sink != b.route.sink or not _overlap(a.route.source, b.route.source):
                continue
            same_condition = (a.route.condition or "").strip() == (b.route.condition or "").strip()
            unconditional = a.condition is None or b.condition is None
            sev: Severity = "warning" if same_condition or unconditional else "info"
            how = "always" if same_condition else "can"
            out.append(LintFinding(
                sev, f"{HUB}.routes.{b.name}",
                f"routes {a.name!r} and {b.name!r} {how} deliver the same message to {b.route.sink}",
                "edgeHub removes the duplicate and delivers the message once, at the better priority; "
                "drop one route or make their sources or conditions disjoint"))
    return out
