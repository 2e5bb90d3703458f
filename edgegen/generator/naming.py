"""Output file naming, exactly as iotedgedev 3.3.9 (``Utility.get_deployment_manifest_name``).

* ``DEPLOYMENT_CONFIG_FILE`` (from the environment or ``.env``) wins outright.
* The platform suffix is added only when ``$schema-template > "0.0.1"`` -- a Python *string* comparison,
  so a template without ``$schema-template`` ("") gets no suffix.
* ``.template.json`` is stripped from the template's base name, else ``.json``; anything else gives
  ``deployment``. edgegen also strips ``.template.yaml``/``.template.yml`` (and ``.yaml``/``.yml``) and a
  trailing ``.j2`` first, so ``deployment.template.yaml`` and ``deployment.template.json.j2`` both give
  ``deployment.<platform>.json``.
"""

from __future__ import annotations

__all__ = ["image_placeholder", "manifest_name"]

_TEMPLATE_SUFFIXES = (".template.json", ".template.yaml", ".template.yml")
_PLAIN_SUFFIXES = (".json", ".yaml", ".yml")


def manifest_name(template_file: str, schema_ver: str | None, platform: str,
                  deployment_config_file: str | None = None) -> str:
    """The generated manifest's file name (no directory)."""
    if deployment_config_file is not None:
        return deployment_config_file
    ver = "" if schema_ver is None else str(schema_ver)
    suffix = "." + platform if ver > "0.0.1" else ""
    prefix = template_file.rsplit("/", 1)[-1]  # os.path.basename on POSIX
    if prefix.endswith(".j2"):
        prefix = prefix[: -len(".j2")]
    for end in _TEMPLATE_SUFFIXES:
        if prefix.endswith(end):
            prefix = prefix[: -len(end)]
            break
    else:
        for end in _PLAIN_SUFFIXES:
            if prefix.endswith(end):
                prefix = prefix[: -len(end)]
                break
        else:
            prefix = "deployment"
    return f"{prefix}{suffix}.json"


def image_placeholder(module_name: str, is_debug: bool = False) -> str:
    """``${MODULES.<name>}`` or ``${MODULES.<name>.debug}`` (iotedgedev ``get_image_placeholder``)."""
    return "${MODULES." + (module_name + ".debug" if is_debug else module_name) + "}"
