"""Build a solution's module images and push those whose registry ``.env`` names (what ``edgegen up --engine
docker`` does before it deploys): the same steps as ``edgegen push`` (models the modules pin baked in and checked,
see ``edgegen.images.models``), reported as plain lines.

An image whose registry has no ``CONTAINER_REGISTRY_SERVER*`` entry is built into the engine only; the device
then runs the engine's image when its pull fails, and says so in the module's status.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from edgegen.images.engine import Engine
from edgegen.images.push import push_image
from edgegen.images.registries import Masker, find_registry, registries_from_env

__all__ = ["Published", "build_and_push"]


@dataclass(frozen=True)
class Published:
    tag: str
    pushed: bool
    seconds: float


def build_and_push(solution_dir: Path, platform: str | None, engine_env: Mapping[str, str] | None,
                   echo: Callable[[str], None]) -> list[Published]:
    from edgegen.images.models import build_with_models
    from edgegen.images.plan import plan_targets
    from edgegen.models.registry import SolutionModels

    plan = plan_targets(cwd=solution_dir, platform=platform)
    models = SolutionModels(solution_dir)  # the registry the modules' pinned models are baked from
    registries = registries_from_env(plan.env, source=str(solution_dir / ".env"))
    masker = Masker.for_registries(registries)
    out = []
    with Engine.connect(engine_env) as engine:
        for target in plan.targets:
            built, checked = build_with_models(engine, target, plan.container_tag, models, masker=masker)
            for line in checked:
                echo(line)
            seconds = built.seconds
            registry = find_registry(target.tag, registries)
            if registry is not None:
                result = push_image(engine, target.tag, registries, masker=masker)
                seconds += result.seconds
                echo(f"built and pushed {target.tag} ({seconds:.1f}s)")
            else:
                echo(f"built {target.tag} ({seconds:.1f}s); not pushed: .env names no registry for it")
            out.append(Published(target.tag, registry is not None, seconds))
    return out
