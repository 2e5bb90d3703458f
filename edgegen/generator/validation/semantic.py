"""Semantic checks beyond the schema: names, images, registries, createOptions, sizes and limits.

Route checks live in ``routes.py`` (they use ``edgegen.routing``). Every check takes the manifest view and
yields findings; nothing here reads files or the environment.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from edgegen.generator.validation import createoptions, routes
from edgegen.generator.validation.findings import ERROR, INFO, WARNING, Finding
from edgegen.generator.validation.model import AGENT, DESIRED, HUB, ManifestView, Ptr

__all__ = [
    "ENV_NAME",
    "MAX_MODULES",
    "MAX_TWIN_DESIRED_BYTES",
    "MODULE_NAME",
    "PUBLIC_REGISTRIES",
    "check",
    "registry_host",
]

MODULE_NAME = re.compile(r"^[a-zA-Z0-9_-]+$")
ENV_NAME = re.compile(r"^[^+#$\s.]+$")
MAX_MODULES = 50
MAX_TWIN_DESIRED_BYTES = 32 * 1024
PUBLIC_REGISTRIES = frozenset({"mcr.microsoft.com", "docker.io", "index.docker.io", "registry-1.docker.io"})


def check(view: ManifestView) -> list[Finding]:
    findings: list[Finding] = []
    for rule in (_module_count, _module_names, _images, _registries, _env_names, _create_options,
                 _twins, routes.check):
        findings.extend(rule(view))
    return findings


def _all_modules(view: ManifestView) -> Iterator[tuple[str, Ptr, Mapping[str, Any]]]:
    for group in (view.system_modules(), view.modules()):
        for name, (ptr, module) in group.items():
            if isinstance(module, Mapping):
                yield name, ptr, module


def _module_count(view: ManifestView) -> Iterator[Finding]:
    modules = view.modules()
    if len(modules) > MAX_MODULES:
        ptr = view.get(AGENT, ("modules",))
        yield Finding.at(
            ERROR, ptr[0] if ptr else view.twin_pointer(AGENT),
            f"{len(modules)} modules in one deployment; IoT Edge allows at most {MAX_MODULES}",
            "split the solution across devices or layered deployments", rule="limits",
        )


def _module_names(view: ManifestView) -> Iterator[Finding]:
    for name, (ptr, _) in view.modules().items():
        if not MODULE_NAME.match(name):
            yield Finding.at(ERROR, ptr, f"module name {name!r} is not allowed",
                             "module names use only letters, digits, _ and - (pattern ^[a-zA-Z0-9_-]+$)",
                             rule="names")


def _env_names(view: ManifestView) -> Iterator[Finding]:
    for name, ptr, module in _all_modules(view):
        env = module.get("env")
        if not isinstance(env, Mapping):
            continue
        for var in env:
            if not ENV_NAME.match(var):
                yield Finding.at(ERROR, (*ptr, "env", var), f"environment variable name {var!r} of module {name} "
                                 "is not allowed", "names may not contain + # $ . or whitespace", rule="names")


def _images(view: ManifestView) -> Iterator[Finding]:
    for name, ptr, module in _all_modules(view):
        settings = module.get("settings")
        image = settings.get("image") if isinstance(settings, Mapping) else None
        if not isinstance(image, str):
            continue
        iptr = (*ptr, "settings", "image")
        if "${" in image:
            placeholder = re.search(r"\$\{[^}]*\}?", image)
            yield Finding.at(
                ERROR, iptr,
                f"image of module {name} still holds the placeholder {placeholder.group(0) if placeholder else '${'}",
                "render the template with `edgegen genconfig` (it resolves ${MODULES.x} from module.json and "
                "${VAR} from .env); a placeholder left here means the name was not found",
                rule="images",
            )
        elif not image.strip():
            yield Finding.at(ERROR, iptr, f"image of module {name} is empty",
                             "set settings.image to the module's image, e.g. registry/name:version-platform",
                             rule="images")
        elif re.search(r"\s", image):
            yield Finding.at(ERROR, iptr, f"image of module {name} contains whitespace: {image!r}", rule="images")


def registry_host(image: str) -> str:
    """The registry an image is pulled from: the first path part when it looks like a host, else docker.io."""
    first, sep, _ = image.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first.lower()
    return "docker.io"


def _normalize_address(address: str) -> str:
    address = re.sub(r"^[a-z]+://", "", address.strip().lower())
    return address.split("/")[0]


def _registries(view: ManifestView) -> Iterator[Finding]:
    creds = view.children(AGENT, ("runtime", "settings", "registryCredentials"))
    known = {
        _normalize_address(c["address"])
        for _, c in creds.values()
        if isinstance(c, Mapping) and isinstance(c.get("address"), str)
    }
    partial = view.is_deployment and view.layered
    for name, ptr, module in _all_modules(view):
        settings = module.get("settings")
        image = settings.get("image") if isinstance(settings, Mapping) else None
        if not isinstance(image, str) or "$" in image or not image.strip():
            continue
        host = registry_host(image)
        if host in PUBLIC_REGISTRIES or host in known:
            continue
        local = host.split(":")[0] in ("localhost", "127.0.0.1")
        severity = INFO if partial else WARNING
        yield Finding.at(
            severity, (*ptr, "settings", "image"),
            f"module {name} pulls from the private registry {host}, which has no registryCredentials entry",
            (f"add runtime.settings.registryCredentials.<name> {{username, password, address: \"{host}\"}}"
             + (" (a local registry without authentication needs none)" if local else "")
             + ("; in a layered deployment the base deployment may hold them" if partial else "")),
            rule="registry-credentials",
        )


def _create_options(view: ManifestView) -> Iterator[Finding]:
    for name, ptr, module in _all_modules(view):
        yield from createoptions.check_module(name, ptr, module)


def _twins(view: ManifestView) -> Iterator[Finding]:
    module_names = set(view.modules())
    partial = view.is_deployment and view.layered
    for twin, ptr, content in view.twins():
        if not isinstance(content, Mapping):
            if twin not in (AGENT, HUB):
                yield Finding.at(ERROR, ptr, f"module twin content of {twin} must be an object", rule="twins")
            continue
        if twin not in (AGENT, HUB):
            if not MODULE_NAME.match(twin):
                yield Finding.at(ERROR, ptr, f"module twin {twin!r} does not name a valid module",
                                 "module names use only letters, digits, _ and -", rule="names")
            elif twin not in module_names and view.desired(AGENT) is not None:
                yield Finding.at(
                    INFO if partial else WARNING, ptr,
                    f"desired properties for {twin}, but there is no module {twin} in $edgeAgent modules",
                    "a typo in the module name? twins are matched by exact name", rule="twins",
                )
            has_desired = DESIRED in content or any(str(k).startswith(DESIRED + ".") for k in content)
            if not has_desired:
                yield Finding.at(ERROR, ptr, f"module twin {twin} has no properties.desired",
                                 f'write {{"{DESIRED}": {{…}}}}', rule="twins")
            elif DESIRED in content and not isinstance(content[DESIRED], Mapping):
                yield Finding.at(ERROR, (*ptr, DESIRED), f"desired properties of {twin} must be an object",
                                 f'write {{"{DESIRED}": {{"setting": …}}}}', rule="twins")
        size = _desired_size(content)
        if size > MAX_TWIN_DESIRED_BYTES:
            yield Finding.at(
                ERROR, ptr,
                f"desired properties of {twin} are {size} bytes; IoT Hub allows {MAX_TWIN_DESIRED_BYTES} (32 KB)",
                "move large settings out of the twin (files, a blob, or fewer modules per deployment)",
                rule="limits",
            )


def _desired_size(content: Mapping[str, Any]) -> int:
    parts = [v for k, v in content.items() if k == DESIRED or str(k).startswith(DESIRED + ".")]
    return sum(len(json.dumps(p, separators=(",", ":"), ensure_ascii=False).encode("utf-8")) for p in parts)
