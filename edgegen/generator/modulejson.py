"""module.json (iotedgedev format) and the image tag rule shared by genconfig, build and push.

Image tag: ``lower(repository):version[-CONTAINER_TAG]-<platform>`` with variables already expanded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgegen.common.safeload import InputError, loads_json, read_text
from edgegen.generator.errors import GeneratorError, Location

__all__ = ["ModuleJsonError", "ModuleSpec", "image_tag", "load_module_json"]


class ModuleJsonError(GeneratorError):
    """module.json is missing, not JSON, or lacks image.repository / image.tag.version."""


@dataclass(frozen=True)
class ModuleSpec:
    """One module folder's module.json, variables expanded."""

    name: str  # folder name, the key used in ${MODULES.<name>}
    folder: Path
    repository: str
    version: str
    platforms: Mapping[str, str]  # platform -> Dockerfile path relative to the folder
    build_options: tuple[str, ...] = ()
    context_path: str = "./"
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def image(self, platform: str, container_tag: str = "") -> str:
        return image_tag(self.repository, self.version, platform, container_tag)

    def dockerfile(self, platform: str) -> Path:
        try:
            rel = self.platforms[platform]
        except KeyError:
            raise ModuleJsonError(
                f"module {self.name!r} has no Dockerfile for platform {platform!r}",
                location=Location(file=str(self.folder / "module.json"), json_path="image.tag.platforms"),
                hint=f"available platforms: {', '.join(sorted(self.platforms)) or 'none'}",
            ) from None
        return (self.folder / rel).resolve()

    @property
    def context(self) -> Path:
        return (self.folder / self.context_path).resolve()


def image_tag(repository: str, version: str, platform: str, container_tag: str = "") -> str:
    tag = f"{repository.lower()}:{version}"
    if container_tag:
        tag += f"-{container_tag}"
    return f"{tag}-{platform}"


def load_module_json(folder: Path, expand: Any = None) -> ModuleSpec:
    """Read ``folder/module.json``; ``expand(text) -> text`` expands variables before parsing."""
    folder = Path(folder)
    path = folder / "module.json"
    if not path.is_file():
        raise ModuleJsonError(f"no module.json in {folder}", location=Location(file=str(path)))
    try:
        text = read_text(path, what="module.json")
        if expand is not None:
            text = expand(text)
        data = loads_json(text, file=str(path), what="module.json")
    except InputError as exc:
        raise exc.as_error(ModuleJsonError) from None
    try:
        image = data["image"]
        tag = image["tag"]
        repository = str(image["repository"])
        version = str(tag["version"])
        platforms = dict(tag.get("platforms", {}))
    except (KeyError, TypeError) as exc:
        raise ModuleJsonError(
            f"module.json lacks {exc}",
            location=Location(file=str(path), json_path="image.tag"),
            hint='expected {"image": {"repository", "tag": {"version", "platforms": {...}}}}',
        ) from None
    return ModuleSpec(
        name=folder.name,
        folder=folder,
        repository=repository,
        version=version,
        platforms=platforms,
        build_options=tuple(image.get("buildOptions", []) or ()),
        context_path=str(image.get("contextPath", "./")),
        raw=data,
    )
