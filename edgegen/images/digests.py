"""Digests of the last push, kept in a state file, for ``genconfig --pin-digests``.

After a push, ``record_digests`` stores ``tag -> sha256:…`` in ``<solution>/.state/images/digests.json``
(atomic write). ``pin_manifest`` (pure) replaces each module image of a rendered manifest by
``repository@sha256:…``, so a deployment always runs exactly the bits that were pushed.
"""

from __future__ import annotations

import copy
import json
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgegen.errors import Location
from edgegen.images.errors import ImageError
from edgegen.images.push import PushResult, split_reference

__all__ = ["DIGEST_FILE", "PushedDigest", "default_digest_file", "load_digests", "pin_manifest", "record_digests"]

DIGEST_FILE = Path(".state") / "images" / "digests.json"


@dataclass(frozen=True)
class PushedDigest:
    tag: str
    digest: str
    pushed_at: float

    @property
    def pinned(self) -> str:
        return f"{split_reference(self.tag)[0]}@{self.digest}"


def default_digest_file(solution_dir: Path) -> Path:
    return Path(solution_dir) / DIGEST_FILE


def load_digests(path: Path) -> dict[str, PushedDigest]:
    """The recorded digests by image tag; {} when nothing was pushed yet."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, json.JSONDecodeError) as exc:
        raise ImageError(
            f"the digest state file is unreadable: {exc}",
            location=Location(file=str(path)),
            hint="delete it and push again",
        ) from None
    images = data.get("images", {}) if isinstance(data, dict) else {}
    return {
        tag: PushedDigest(tag, str(v["digest"]), float(v.get("pushed_at", 0)))
        for tag, v in images.items()
        if isinstance(v, dict) and "digest" in v
    }


def record_digests(path: Path, results: Iterable[PushResult], now: float | None = None) -> dict[str, PushedDigest]:
    """Merge the digests of ``results`` into the state file; returns the new content."""
    path = Path(path)
    current = load_digests(path)
    stamp = time.time() if now is None else now
    for r in results:
        if r.digest:
            current[r.tag] = PushedDigest(r.tag, r.digest, stamp)
    doc = {
        "version": 1,
        "images": {
            t: {"digest": d.digest, "pinned": d.pinned, "pushed_at": d.pushed_at} for t, d in sorted(current.items())
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return current


def pin_manifest(
    manifest: Mapping[str, Any],
    digests: Mapping[str, PushedDigest],
    required: Iterable[str] = (),
    source: str | None = None,
) -> dict[str, Any]:
    """A copy of ``manifest`` whose ``$edgeAgent`` module images are pinned to their pushed digests.

    Images listed in ``required`` (those built from module.json) must have a recorded digest; others are pinned
    when known and left alone otherwise. Images already pinned (``@sha256:``) are kept.
    """
    out = copy.deepcopy(dict(manifest))
    need = set(required)
    missing: list[tuple[str, str]] = []
    for path, settings in _module_settings(out):
        image = settings.get("image")
        if not isinstance(image, str) or "@" in image:
            continue
        found = digests.get(image)
        if found:
            settings["image"] = found.pinned
        elif image in need:
            missing.append((path, image))
    if missing:
        path, image = missing[0]
        names = ", ".join(i for _, i in missing)
        raise ImageError(
            f"--pin-digests: no pushed digest recorded for {names}",
            location=Location(file=source, json_path=f"{path}.settings.image"),
            hint="push first (`edgegen push`), with the same CONTAINER_TAG and platform",
        )
    return out


def _module_settings(manifest: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    agent = manifest.get("modulesContent", {}).get("$edgeAgent", {})
    if not isinstance(agent, dict):
        return found
    desired = agent.get("properties.desired", {})
    modules = desired.get("modules", {}) if isinstance(desired, dict) else {}
    if isinstance(modules, dict):
        for name, mod in modules.items():
            if isinstance(mod, dict) and isinstance(mod.get("settings"), dict):
                found.append((f"modulesContent.$edgeAgent.properties.desired.modules.{name}", mod["settings"]))
    prefix = "properties.desired.modules."
    for key, mod in agent.items():  # layered deployments
        if key.startswith(prefix) and isinstance(mod, dict) and isinstance(mod.get("settings"), dict):
            found.append((f"modulesContent.$edgeAgent.{key}", mod["settings"]))
    return found
