"""Route lint over manifests: each rule fires on its case and stays quiet on the repo's own solution."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from edgegen.routing import LintFinding, lint_routes

HUB = "modulesContent.$edgeHub.properties.desired"


def manifest(routes: dict[str, Any], modules: tuple[str, ...] = ("a", "b"), version: str = "1.1",
             env: dict[str, Any] | None = None) -> dict[str, Any]:
    mods = {m: {"type": "docker", "settings": {"image": "x"}, **({"env": env[m]} if env and m in env else {})}
            for m in modules}
    return {"modulesContent": {
        "$edgeAgent": {"properties.desired": {"modules": mods}},
        "$edgeHub": {"properties.desired": {"schemaVersion": version, "routes": routes}},
    }}


def only(findings: list[LintFinding], needle: str) -> LintFinding:
    hits = [f for f in findings if needle in f.message]
    assert len(hits) == 1, findings
    return hits[0]


OK = {"ab": "FROM /messages/modules/a/outputs/o INTO BrokeredEndpoint('/modules/b/inputs/i')",
      "up": "FROM /messages/modules/b/* INTO $upstream"}


def test_clean_manifest_has_no_findings() -> None:
    assert lint_routes(manifest(OK)) == []


def test_repo_solution_is_clean(repo_root: Path) -> None:
    assert lint_routes(json.loads((repo_root / "deployment.template.json").read_text())) == []


def test_syntax_error_is_an_error_with_caret_and_path() -> None:
    f = only(lint_routes(manifest({**OK, "bad": "FROM /messages WHERE a == 1 INTO $upstream"})), "'=='")
    assert f.severity == "error" and f.path == f"{HUB}.routes.bad"
    assert "^" in f.message and f.hint


def test_route_to_a_missing_module() -> None:
    bad = "FROM /messages/modules/a/* INTO BrokeredEndpoint('/modules/B/inputs/i')"
    f = only(lint_routes(manifest({**OK, "x": bad})), "does not exist")
    # edgeHub accepts it (messages wait until their TTL): a warning, as edgegen validate says too
    assert f.severity == "warning" and "did you mean 'b'" in f.message


def test_route_from_a_missing_module() -> None:
    f = only(lint_routes(manifest({**OK, "x": "FROM /messages/modules/zz/* INTO $upstream"})), "reads from module")
    assert f.severity == "warning"


def test_module_nothing_routes_to_or_from() -> None:
    f = only(lint_routes(manifest(OK, modules=("a", "b", "lonely"))), "no route to or from it")
    assert f.path == "modulesContent.$edgeAgent.properties.desired.modules.lonely"
    assert f.severity == "info"  # many modules never use edgeHub messaging
    f = only(lint_routes(manifest(OK, modules=("a", "b", "lonely")), messaging={"lonely": True}),
             "no route to or from it")
    assert f.severity == "warning" and "its code sends or receives" in f.message


@pytest.mark.parametrize("source", ["/messages/*", "/messages", "/messages/modules/*", "/MESSAGES/Modules/*"])
def test_a_wildcard_route_covers_every_module(source: str) -> None:
    routes = {"all": f"FROM {source} INTO $upstream"}
    found = lint_routes(manifest(routes, modules=("a", "lonely")), messaging={"lonely": True, "a": True})
    assert not [f for f in found if "no route to or from it" in f.message]


def test_a_route_from_another_module_does_not_cover() -> None:
    routes = {"r": "FROM /messages/modules/a/* INTO $upstream"}
    f = only(lint_routes(manifest(routes, modules=("a", "b"))), "no route to or from it")
    assert "'b'" in f.message


def test_duplicate_deliveries_are_explained() -> None:
    routes = {**OK, "again": "FROM /messages/modules/a/* INTO BrokeredEndpoint('/modules/b/inputs/i')"}
    f = only(lint_routes(manifest(routes)), "deliver the same message")
    assert f.severity == "warning" and "edgeHub removes the duplicate" in (f.hint or "")
    conditional = {**OK, "c": "FROM /messages/modules/a/outputs/o WHERE x = '1' INTO $upstream",
                   "d": "FROM /messages/modules/a/outputs/o WHERE y = '1' INTO $upstream"}
    f2 = only(lint_routes(manifest(conditional)), "can deliver the same message")
    assert f2.severity == "info"


@pytest.mark.parametrize("cond", ["false", "1 = 2", "undefined", "null", "upper('a') = 'b'", "x = null",
                                  "as_number(x) > undefined", "x = 'a' AND null"])
def test_condition_that_can_never_be_true(cond: str) -> None:
    f = only(lint_routes(manifest({**OK, "never": f"FROM /messages/modules/a/* WHERE {cond} INTO $upstream"})),
             "never delivers")
    assert f.severity == "warning"


def test_body_query_on_a_module_declared_non_json() -> None:
    routes = {**OK, "q": "FROM /messages/modules/a/outputs/o WHERE $body.t > 1 INTO $upstream"}
    f = only(lint_routes(manifest(routes), content_types={"a/o": "text/csv"}), "queries $body")
    assert f.severity == "warning" and "text/csv" in f.message
    assert lint_routes(manifest(routes), content_types={"a": "application/json; charset=utf-8"}) == []
    by_env = manifest(routes, env={"a": {"CONTENT_TYPE": {"value": "application/octet-stream"}}})
    only(lint_routes(by_env), "queries $body")
    assert lint_routes(manifest(routes)) == []  # nothing declared: nothing said


def test_schema_1_0_object_route_is_an_error() -> None:
    m = manifest({"ab": {"route": OK["ab"], "priority": 0}, "up": OK["up"]}, version="1.0")
    f = only(lint_routes(m), "schemaVersion 1.0")
    assert f.severity == "error"


def test_manifest_forms_are_accepted() -> None:
    m = manifest(OK)
    nested = copy.deepcopy(m)
    for key in ("$edgeAgent", "$edgeHub"):
        nested["modulesContent"][key] = {"properties": {"desired": nested["modulesContent"][key]["properties.desired"]}}
    assert lint_routes(nested) == []
    assert lint_routes({"content": m}) == []


def test_star_in_the_middle_of_a_path_matches_nothing() -> None:
    f = only(lint_routes(manifest({**OK, "s": "FROM /messages/modules/*/outputs/o INTO $upstream"})), "before the end")
    assert f.severity == "warning"


def test_is_defined_on_a_body_path_is_always_true() -> None:
    route = "FROM /messages/modules/a/* WHERE is_defined($body.err) INTO $upstream"
    f = only(lint_routes(manifest({**OK, "d": route})), "is true for every JSON body")
    assert f.severity == "info" and "<> null" in (f.hint or "")
