"""Edit a deployment template in place (``edgegen add``): add a module and its default route.

Like iotedgedev's ``add_module_template`` + ``add_default_route``, but the template is *not* variable-expanded
first (iotedgedev writes ``.env`` values into the template when it adds a module). JSON templates are
re-written as ``json.dumps(indent=2)`` (iotedgedev's format); unquoted ``${TTL}``-style values survive the
round trip. YAML templates are re-dumped with PyYAML (comments are lost). Jinja2 templates are refused.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from edgegen.common.safeload import InputError, loads_json, loads_yaml, read_text
from edgegen.generator.atomic import write_text_atomic
from edgegen.generator.errors import Location, ScaffoldError
from edgegen.generator.naming import image_placeholder

__all__ = ["add_module_to_template", "module_entry", "protect_raw", "restore_raw"]

_VAR = re.compile(r"\$(\w+|\{[^}]*\})", re.ASCII)
_RAW = '"__edgegen_raw_%d__"'


def protect_raw(text: str) -> tuple[str, list[str]]:
    """Replace ``$VAR``/``${VAR}`` written *outside* JSON strings by string sentinels, so the text parses."""
    out: list[str] = []
    raws: list[str] = []
    i, n, in_str = 0, len(text), False
    while i < n:
        c = text[i]
        if in_str:
            if c == "\\":
                out.append(text[i : i + 2])
                i += 2
                continue
            in_str = c != '"'
        elif c == '"':
            in_str = True
        elif c == "$":
            m = _VAR.match(text, i)
            if m:
                out.append(_RAW % len(raws))
                raws.append(m.group(0))
                i = m.end()
                continue
        out.append(c)
        i += 1
    return "".join(out), raws


def restore_raw(text: str, raws: list[str]) -> str:
    for idx, raw in enumerate(raws):
        text = text.replace(_RAW % idx, raw)
    return text


def module_entry(name: str, create_options: dict[str, Any] | None = None, is_debug: bool = False,
                 env: dict[str, str] | None = None) -> dict[str, Any]:
    """The module block iotedgedev adds (version 1.0, docker, running, always, ``${MODULES.<name>[.debug]}``), with
    ``env`` (name -> value) as edgeAgent's ``env`` when given."""
    entry: dict[str, Any] = {
        "version": "1.0",
        "type": "docker",
        "status": "running",
        "restartPolicy": "always",
        "settings": {"image": image_placeholder(name, is_debug), "createOptions": create_options or {}},
    }
    if env:
        entry["env"] = {k: {"value": v} for k, v in env.items()}
    return entry


def _content(data: Any, file: str) -> dict[str, Any]:
    if isinstance(data, dict):
        for key in ("modulesContent", "moduleContent"):
            if isinstance(data.get(key), dict):
                return data[key]
        content = data.get("content")
        if isinstance(content, dict) and isinstance(content.get("modulesContent"), dict):
            return content["modulesContent"]
    raise ScaffoldError(f"Missing key 'modulesContent' in file {file}", location=Location(file=file, json_path="$"),
                        hint='a deployment template is {"modulesContent": {"$edgeAgent": ..., "$edgeHub": ...}}')


def _nested_set(root: dict[str, Any], keys: list[str], value: Any, file: str) -> None:
    current = root
    for key in keys[:-1]:
        nxt = current.setdefault(key, {})
        if not isinstance(nxt, dict):
            raise ScaffoldError(f"{'.'.join(keys[:-1])} is not an object in {file}", location=Location(file=file))
        current = nxt
    current[keys[-1]] = value


def load_for_edit(path: Path) -> tuple[Any, str, list[str]]:
    """(data, kind 'json'|'yaml', raw sentinels) of a template that ``add`` may edit."""
    file = str(path)
    if not path.is_file():
        raise ScaffoldError(f'Deployment manifest template file "{path}" not found', location=Location(file=file),
                            hint="run it in the solution folder or set DEPLOYMENT_CONFIG_TEMPLATE_FILE")
    try:
        text = read_text(path, what=path.name)
    except InputError as exc:
        raise exc.as_error(ScaffoldError) from None
    if file.endswith(".j2") or text.lstrip().startswith(("{#", "{%")):
        raise ScaffoldError(f"{path.name} is a Jinja2 template; edgegen cannot edit it safely",
                            location=Location(file=file),
                            hint="add the module block and route by hand (see templates/fragments/modules.j2)")
    try:
        if file.endswith((".yaml", ".yml")):
            return loads_yaml(text, file=file, what=path.name), "yaml", []
        protected, raws = protect_raw(text)
        return loads_json(protected, file=file, what=path.name), "json", raws
    except InputError as exc:
        raise exc.as_error(ScaffoldError) from None


def add_module_to_template(path: Path | str, name: str, create_options: dict[str, Any] | None = None,
                           is_debug: bool = False, input_routes: dict[str, str] | None = None,
                           env: dict[str, str] | None = None) -> None:
    """Add module ``name`` (image ``${MODULES.name[.debug]}``), the ``input_routes`` (name → route) that feed its
    inputs, and route ``<name>ToIoTHub`` to a template file."""
    path = Path(path)
    data, kind, raws = load_for_edit(path)
    content = _content(data, str(path))
    _nested_set(content, ["$edgeAgent", "properties.desired", "modules", name],
                module_entry(name, create_options, is_debug, env), str(path))
    for route_name, route in (input_routes or {}).items():
        _nested_set(content, ["$edgeHub", "properties.desired", "routes", route_name], route, str(path))
    _nested_set(content, ["$edgeHub", "properties.desired", "routes", f"{name}ToIoTHub"],
                f"FROM /messages/modules/{name}/outputs/* INTO $upstream", str(path))
    if kind == "yaml":
        import yaml

        write_text_atomic(path, yaml.safe_dump(data, sort_keys=False, default_flow_style=False))
    else:
        write_text_atomic(path, restore_raw(json.dumps(data, indent=2), raws))
