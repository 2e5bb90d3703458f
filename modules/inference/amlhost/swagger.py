"""``GET /swagger.json``: the OpenAPI documents azmlinfsrv 1.5.1 serves (``server/swagger.py``), built the same way.

Versions ``2`` (alias ``2.0``, the default), ``3`` (``3.0``) and ``3.1``. For each, a file the user ships in
``AML_APP_ROOT`` wins (``swagger.json`` or ``swagger2.json``; ``swagger3.json``; ``swagger3.1.json``); otherwise the
document is azmlinfsrv's template (copied into ``templates/``) with ``$SERVICE_NAME$``, ``$SERVICE_VERSION$`` and
``$PATH_PREFIX$`` filled from ``SERVICE_NAME`` (``ML service``), ``SERVICE_VERSION`` (``1.0``) and
``SERVICE_PATH_PREFIX``, and ``ServiceInput``/``ServiceOutput`` from the inference_schema decorators (an undecorated
``run()`` gets ``{"type": "object", "example": {}}``). A version the decorators' sample data cannot be expressed in
(swagger 2 has no mixed-type arrays) is not offered: asking for it is a 404, as is an unknown version.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Swagger", "SwaggerError"]

TEMPLATES = Path(__file__).resolve().parent / "templates"
ALL_SUPPORTED_VERSIONS = ["2.0", "3.0", "3.1"]  # inference_schema's, for an undecorated run()


class SwaggerError(Exception):
    pass


@dataclass(frozen=True)
class _Builder:
    version: str
    aliases: frozenset[str]
    template: str
    user_files: tuple[str, ...]
    section: tuple[str, ...]  # where ServiceInput/ServiceOutput go
    openapi: str | None = None  # overrides the template's "openapi" (3.1)


BUILDERS = (
    _Builder("2", frozenset({"2", "2.0"}), "swagger2_template.json", ("swagger.json", "swagger2.json"),
             ("definitions",)),
    _Builder("3", frozenset({"3", "3.0"}), "swagger3_template.json", ("swagger3.json",), ("components", "schemas")),
    _Builder("3.1", frozenset({"3.1"}), "swagger3_template.json", ("swagger3.1.json",), ("components", "schemas"),
             openapi="3.1.0"),
)
VALID_VERSIONS = frozenset().union(*(b.aliases for b in BUILDERS))


def _schema_functions() -> tuple[Callable[..., Any], ...] | None:
    util = sys.modules.get("inference_schema.schema_util")
    if util is None:
        return None
    return util.is_schema_decorated, util.get_input_schema, util.get_output_schema, util.get_supported_versions


class Swagger:
    """The documents for one entry script, built once at start (as azmlinfsrv does)."""

    def __init__(self, run: Callable[..., Any], app_root: Path, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self.documents: dict[str, bytes] = {}  # alias → JSON body
        self.supported: list[str] = []
        for builder in BUILDERS:
            document = self._user_document(app_root, builder) or self._generate(run, builder, env)
            if document is None:
                continue
            body = json.dumps(document).encode()
            for alias in builder.aliases:
                self.documents[alias] = body
            self.supported.append(builder.version)
        self.supported.sort()

    @staticmethod
    def _user_document(app_root: Path, builder: _Builder) -> Any:
        for name in builder.user_files:
            path = app_root / name
            try:
                return json.loads(path.read_text(encoding="utf-8"))
            except FileNotFoundError:
                continue
            except (ValueError, OSError) as exc:
                raise SwaggerError(f"{path}: cannot be read as JSON ({exc}); fix it or remove it") from None
        return None

    @staticmethod
    def _generate(run: Callable[..., Any], builder: _Builder, env: Mapping[str, str]) -> Any:
        functions = _schema_functions()
        decorated = functions is not None and functions[0](run)
        versions = functions[3](run) if functions is not None else ALL_SUPPORTED_VERSIONS
        if all(alias not in versions for alias in builder.aliases):
            return None
        if decorated:
            assert functions is not None
            service_input, service_output = functions[1](run), functions[2](run)
        else:
            service_input = service_output = {"type": "object", "example": {}}
        prefix = env.get("SERVICE_PATH_PREFIX", "")
        text = ((TEMPLATES / builder.template).read_text(encoding="utf-8")
                .replace("$SERVICE_NAME$", env.get("SERVICE_NAME", "ML service"))
                .replace("$SERVICE_VERSION$", env.get("SERVICE_VERSION", "1.0"))
                .replace("$PATH_PREFIX$", f"/{prefix.strip('/')}" if prefix else ""))
        document = json.loads(text)
        section = document
        for key in builder.section:
            section = section[key]
        section["ServiceInput"] = service_input
        section["ServiceOutput"] = service_output
        if builder.openapi:
            document["openapi"] = builder.openapi
        return document

    def get(self, version: str | None) -> bytes:
        """The document's JSON; raises SwaggerError (a 404) for an unknown or unsupported version."""
        version = "2" if version is None else version
        listed = ", ".join(sorted(self.supported))
        if version not in VALID_VERSIONS:
            raise SwaggerError(f"Swagger version [{version}] is not valid. Supported versions: [{listed}].")
        body = self.documents.get(version)
        if body is None:
            raise SwaggerError(f"Swagger version [{version}] is not supported for the scoring script. "
                               f"Supported swagger versions: [{listed}].")
        return body
