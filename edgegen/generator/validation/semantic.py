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
# registries whose images are mostly public: an image from them with no registryCredentials is the norm
PUBLIC_REGISTRIES = frozenset({"mcr.microsoft.com", "docker.io", "index.docker.io", "registry-1.docker.io",
                               "ghcr.io", "quay.io", "public.ecr.aws", "gcr.io", "registry.k8s.io", "k8s.gcr.io",
                               "nvcr.io", "registry.gitlab.com"})


def check(view: ManifestView) -> list[Finding]:
    findings: list[Finding] = []
    for rule in (_module_count, _module_names, _images, _registries, _env_names, _create_options,
                 _twins, _placeholders, routes.check):
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
        if not MODULE_NAME.fullmatch(name):
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
        if host in PUBLIC_REGISTRIES or host in known or _is_loopback(host):
            continue  # public images, and a registry on the device itself (usually without authentication)
        severity = INFO if partial else WARNING
        yield Finding.at(
            severity, (*ptr, "settings", "image"),
            f"module {name} pulls from the private registry {host}, which has no registryCredentials entry",
            (f"add runtime.settings.registryCredentials.<name> {{username, password, address: \"{host}\"}}"
             " (a registry that allows anonymous pulls needs none)"
             + ("; in a layered deployment the base deployment may hold them" if partial else "")),
            rule="registry-credentials",
        )


def _is_loopback(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    name = name.strip("[]")
    return name == "localhost" or name.startswith("127.") or name == "::1"


# ${NAME} / $NAME left in a value: a variable genconfig could not expand (--allow-unresolved, iotedgedev, or a
# hand-written manifest). $NAME only when it looks like an environment variable (upper case), so system names
# ($edgeAgent, $upstream, $body, $connectionModuleId) and shell text are not reported.
_BRACED = re.compile(r"\$\{[^}\s]{1,200}\}")
_BARE = re.compile(r"(?<![\w$])\$[A-Z_][A-Z0-9_]{1,100}(?![\w.])")


def _placeholders(view: ManifestView) -> Iterator[Finding]:
    route_ptrs = {ptr for ptr, _ in view.routes().values()}
    stack: list[tuple[Ptr, Any]] = [((*view.twin_pointer(t),), c) for t, _, c in view.twins()]
    while stack:
        ptr, value = stack.pop()
        if isinstance(value, Mapping):
            if ptr and isinstance(ptr[-1], str) and ptr[-1] == "settings" and "createOptions" in value:
                yield from _placeholders_in_create_options(ptr, value)
                value = {k: v for k, v in value.items() if not str(k).startswith("createOptions")}
            stack.extend(((*ptr, k), v) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend(((*ptr, i), v) for i, v in enumerate(value))
        elif isinstance(value, str) and "$" in value and ptr not in route_ptrs and (*ptr[:-1],) not in route_ptrs:
            if ptr[-1] == "schemaVersion" or (ptr[-2:] == ("settings", "image") and "${" in value):
                continue  # reported by the schema and images rules
            found = _BRACED.search(value) or _BARE.search(value)
            if found:
                yield _placeholder_finding(ptr, found.group(0))


def _placeholders_in_create_options(settings_ptr: Ptr, settings: Mapping[str, Any]) -> Iterator[Finding]:
    parts = []
    for i in range(createoptions.MAX_CHUNKS):  # the chunks edgeAgent joins (a placeholder may span two)
        chunk = settings.get(createoptions.chunk_key(i))
        if not isinstance(chunk, str):
            break
        parts.append(chunk)
    joined = "".join(parts)
    found = _BRACED.search(joined) or _BARE.search(joined)
    if found:
        yield _placeholder_finding((*settings_ptr, "createOptions"), found.group(0))


def _placeholder_finding(ptr: Ptr, placeholder: str) -> Finding:
    return Finding.at(
        WARNING, ptr, f"{placeholder} was left in the manifest unexpanded",
        "a variable that was not set when the template was rendered: set it in .env or the environment and run "
        "`edgegen genconfig` again (without --allow-unresolved it is an error there)", rule="placeholders",
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
            if not MODULE_NAME.fullmatch(twin):
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
