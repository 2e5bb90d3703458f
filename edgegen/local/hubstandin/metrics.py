"""Configuration metrics, pure: system counts (targeted, applied, reported) and custom metric queries."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from edgegen.local.hubstandin.condition import compile_metric_query
from edgegen.local.hubstandin.deployments import Configuration

__all__ = ["configuration_view"]


def _twin_key(device_id: str, module_id: str) -> str:
    return f"{device_id}/{module_id}"


def configuration_view(cfg: Configuration, devices: Mapping[str, Any], twins: Mapping[str, dict[str, Any]],
                       twin_doc: Callable[[str], dict[str, Any]]) -> dict[str, Any]:
    """The REST shape, with system metrics (targeted/applied/reported) and custom metric results."""
    targeted = applied = ok = failed = 0
    results: dict[str, int] = {}
    queries = {name: compile_metric_query(q) for name, q in cfg.metrics.items()}
    for device_id in devices:
        doc = twin_doc(device_id)
        status = doc["configurations"].get(cfg.id, {}).get("status")
        targeted += status is not None
        applied += status == "Applied"
        agent_key = _twin_key(device_id, "$edgeAgent")
        agent = twins.get(agent_key)
        agent_doc = None
        if agent is not None:
            agent_doc = {"deviceId": device_id, "moduleId": "$edgeAgent", "configurations": doc["configurations"],
                         "properties": {"desired": agent["desired"], "reported": agent["reported"]}}
            if status == "Applied":
                code = (agent["reported"].get("lastDesiredStatus") or {}).get("code")
                ok += code == 200 and agent["reported"].get("lastDesiredVersion") == agent["desiredVersion"]
                failed += code is not None and code != 200
        for name, query in queries.items():
            if query.over_modules:
                module_docs = [agent_doc] if agent_doc else []
                module_docs += [{"deviceId": device_id, "moduleId": k.split("/", 1)[1],
                                 "properties": {"desired": t["desired"], "reported": t["reported"]}}
                                for k, t in twins.items()
                                if k.startswith(device_id + "/") and k != agent_key]
                results[name] = results.get(name, 0) + sum(1 for d in module_docs if query.matches(d))
            else:
                results[name] = results.get(name, 0) + int(query.matches(doc))
    view = cfg.to_dict()
    view.pop("sequence", None)
    view["systemMetrics"] = {"results": {"targetedCount": targeted, "appliedCount": applied,
                                         "reportedSuccessfulCount": ok, "reportedFailedCount": failed},
                             "queries": {}}
    view["metrics"] = {"results": results, "queries": cfg.metrics}
    return view

