"""fleet.yaml: device groups with variable overrides, rendered and deployed at scale."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgegen.hub.errors import HubClientError

__all__ = ["deploy_fleet"]


def deploy_fleet(path: Path, client: Any, *, validate: bool = True) -> list[Any]:
    raise HubClientError("'edgegen deploy --fleet' is not implemented yet",
                         hint="deploy each group with --name/--target-condition for now")
