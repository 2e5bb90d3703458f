"""Configuration metrics, computed as IoT Hub computes them: by running queries and counting the rows.

System metric queries (``systemMetrics.queries``), per kind of configuration — for IoT Edge deployments the
texts IoT Hub returns (as recorded by the Azure CLI IoT extension's tests); for device and module
configurations the same pattern over their collection::

    targetedCount           select deviceId from devices where capabilities.iotEdge = true and (<target>)
    appliedCount            select deviceId from devices.modules where moduleId = '$edgeAgent'
                              and configurations.[[<id>]].status = 'Applied'
    reportedSuccessfulCount … and properties.desired.$version = properties.reported.lastDesiredVersion
                              and properties.reported.lastDesiredStatus.code = 200
    reportedFailedCount     … and … lastDesiredStatus.code != 200

An empty target condition has the empty query (count 0). IoT Hub refreshes the counts every few minutes;
the stand-in computes them when a configuration is read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from edgegen.local.hubstandin.deployments import Configuration
from edgegen.local.hubstandin.query import CompiledQuery, Source, parse_target

__all__ = ["configuration_view", "system_queries"]

_AGENT_APPLIED = ("select deviceId from devices.modules where moduleId = '$edgeAgent' "
                  "and configurations.[[{id}]].status = 'Applied'")
_IN_SYNC = " and properties.desired.$version = properties.reported.lastDesiredVersion"


def _condition_text(target: str) -> str | None:
    """The WHERE part of a target condition ('' for '*', None for the empty condition)."""
    text = target.strip()
    if not text:
        return None
    if text == "*":
        return ""
    parsed = parse_target(text)
    if parsed.where is None:
        return ""
    return text[parsed.where.span.start: parsed.where.span.end]


def system_queries(cfg: Configuration) -> dict[str, str]:
    cond = _condition_text(cfg.target_condition)
    if cfg.kind == "edge":
        targeted = "" if cond is None else "select deviceId from devices where capabilities.iotEdge = true" + (
            f" and ({cond})" if cond else "")
        applied = _AGENT_APPLIED.format(id=cfg.id)
        return {"targetedCount": targeted, "appliedCount": applied,
                "reportedSuccessfulCount": applied + _IN_SYNC + " and properties.reported.lastDesiredStatus.code = 200",
                "reportedFailedCount": applied + _IN_SYNC + " and properties.reported.lastDesiredStatus.code != 200"}
    what = "select deviceId from devices" if cfg.kind == "device" else "select deviceId, moduleId from devices.modules"
    targeted = "" if cond is None else what + (f" where {cond}" if cond else "")
    return {"targetedCount": targeted,
            "appliedCount": f"{what} where configurations.[[{cfg.id}]].status = 'Applied'"}


def configuration_view(cfg: Configuration, compile_query: Callable[[str], CompiledQuery],
                       documents: Callable[[Source], list[dict[str, Any]]]) -> dict[str, Any]:
    """The REST shape, with system metrics (targeted/applied/reported) and custom metric results."""
    docs: dict[Source, list[dict[str, Any]]] = {}

    def count(text: str) -> int:
        if not text:
            return 0
        query = compile_query(text)
        if query.source not in docs:
            docs[query.source] = documents(query.source)
        return len(query.run(docs[query.source]))

    system = system_queries(cfg)
    view = cfg.to_dict()
    view.pop("sequence", None)
    view["systemMetrics"] = {"results": {name: count(q) for name, q in system.items()}, "queries": system}
    view["metrics"] = {"results": {name: count(q) for name, q in cfg.metrics.items()}, "queries": cfg.metrics}
    return view
