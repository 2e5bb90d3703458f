"""``edgegen deploy`` as a library call: one request, one of four plans, one outcome (data; the CLI renders it).

- a fleet file rendered into a folder (``dry_run``): nothing deployed;
- a fleet file deployed, one at-scale deployment per group and per device with its own variables;
- a manifest on one device (``device_id``);
- a manifest at scale (``name`` + ``target_condition``), layered or not.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgegen.errors import Location
from edgegen.hub.errors import HubClientError

__all__ = ["DeployOutcome", "DeployRequest", "ManifestRejected", "deploy"]


class ManifestRejected(HubClientError):
    """Offline validation found errors in the manifest: nothing was deployed (``findings`` says what)."""

    def __init__(self, path: Path, findings: list[Any]) -> None:
        super().__init__(f"{path}: the manifest has validation errors; nothing was deployed",
                         hint="fix them (see above), or pass --no-validation to deploy anyway")
        self.findings = findings


@dataclass(frozen=True)
class DeployRequest:
    """Exactly one of ``device_id``, ``name`` (with ``target_condition``) or ``fleet``."""

    device_id: str | None = None
    manifest: str | None = None
    name: str | None = None
    target_condition: str | None = None
    priority: int = 0
    layered: bool = False
    labels: Mapping[str, str] = field(default_factory=dict)
    metrics: Mapping[str, str] = field(default_factory=dict)  # name -> query
    fleet: Path | None = None
    dry_run: Path | None = None
    validate: bool = True

    def problem(self) -> str | None:
        """What is wrong with the combination of options, or None."""
        if sum(x is not None for x in (self.device_id, self.name, self.fleet)) != 1:
            return "give exactly one of -d/--device, --name or --fleet"
        if self.dry_run is not None and self.fleet is None:
            return "--dry-run goes with --fleet"
        if self.name is not None and self.target_condition is None:
            return "--name needs --target-condition (e.g. \"tags.environment='prod'\")"
        if self.device_id is not None and self.layered:
            return "--layered applies to at-scale deployments (--name), not to -d"
        return None


@dataclass
class DeployOutcome:
    """What a deploy did. ``data`` is what ``--output json`` prints; ``findings`` the validation findings that
    did not block (warnings, or a dry run's errors); ``error`` is set after a dry run whose manifests have
    validation errors (everything was written, the caller fails)."""

    kind: str  # "dry-run", "fleet", "device", "at-scale"
    data: Any
    results: list[Any] = field(default_factory=list)  # edgegen.hub.client.DeployResult
    findings: list[tuple[str | None, Any]] = field(default_factory=list)  # (deployment or None, Finding)
    plan: Any = None  # edgegen.hub.fleet.FleetPlan, for the fleet kinds
    written: list[Path] = field(default_factory=list)
    manifest: Path | None = None
    error: HubClientError | None = None


def deploy(request: DeployRequest, client: Callable[[], Any], *, cwd: Path | None = None,
           on_findings: Callable[[list[tuple[str | None, Any]]], None] | None = None) -> DeployOutcome:
    """Carry out ``request``; ``client()`` makes the HubClient (not called for a dry run). ``on_findings`` gets
    the validation findings as soon as they are known (before anything is deployed). Raises ValueError for a
    combination of options ``request.problem()`` refuses, ManifestRejected when validation finds errors."""
    problem = request.problem()
    if problem is not None:
        raise ValueError(problem)
    if request.fleet is not None:
        outcome = _fleet(request, request.fleet, client, cwd or Path.cwd(), on_findings)
    else:
        outcome = _manifest(request, client, on_findings)
    return outcome


def _fleet(request: DeployRequest, fleet: Path, client: Callable[[], Any], cwd: Path,
           on_findings: Callable[[list[tuple[str | None, Any]]], None] | None) -> DeployOutcome:
    from edgegen.hub.fleet import deploy_fleet, render_fleet, write_fleet

    if request.dry_run is None:
        results = deploy_fleet(fleet, client(), validate=request.validate)
        rows = [{"action": r.action, "target": r.target, "notes": list(r.notes)} for r in results]
        return DeployOutcome("fleet", rows, results=results)
    plan = render_fleet(fleet, cwd=cwd, validate=request.validate)
    errors = plan.errors()
    if on_findings is not None and errors:
        on_findings(list(errors))
    written = write_fleet(plan, request.dry_run)
    data = {"deployments": [d.name for d in plan.deployments], "devices": len(plan.device_deployment),
            "errors": len(errors), "written": [str(p) for p in written]}
    error = HubClientError("the fleet's manifests have validation errors (see above)",
                           location=Location(file=str(fleet))) if errors else None
    return DeployOutcome("dry-run", data, findings=list(errors), plan=plan, written=written, error=error)


def _manifest(request: DeployRequest, client: Callable[[], Any],
              on_findings: Callable[[list[tuple[str | None, Any]]], None] | None) -> DeployOutcome:
    from edgegen.generator.validation import ValidationError
    from edgegen.hub.client import AtScaleDeployment
    from edgegen.hub.manifest import find_manifest, load_manifest

    path = find_manifest(request.manifest)
    try:
        loaded = load_manifest(path, validate=request.validate, layered=request.layered)
    except ValidationError as exc:
        raise ManifestRejected(path, exc.findings) from None
    findings: list[tuple[str | None, Any]] = [(None, f) for f in loaded.findings]
    if on_findings is not None and findings:
        on_findings(findings)
    hub = client()
    if request.device_id is not None:
        result = hub.deploy_to_device(request.device_id, loaded.modules_content)
        kind = "device"
    else:
        assert request.name is not None and request.target_condition is not None
        result = hub.deploy_at_scale(AtScaleDeployment(
            request.name, loaded.modules_content, request.target_condition, request.priority, dict(request.labels),
            dict(request.metrics), request.layered))
        kind = "at-scale"
    data = {"action": result.action, "target": result.target, "manifest": str(path), "notes": list(result.notes),
            "hub": hub.target.host_name}
    return DeployOutcome(kind, data, results=[result], findings=findings, manifest=path)
