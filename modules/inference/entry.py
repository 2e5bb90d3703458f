"""Load an Azure-ML-style entry script (``init()`` once, ``run(raw_data)`` per request) and shape its I/O.

Pure helpers plus one loader; no event loop here. The same rules serve MQTT messages, the HTTP ``/score`` route
and the ``score`` direct method:
- input: a JSON body is passed as the JSON *string* (what ``json.loads(raw_data)`` in the docs expects), anything
  else as raw ``bytes``; a body declared JSON that does not parse is rejected before ``run()`` sees it;
- output: ``bytes`` go out as they are, a ``str`` that already holds JSON goes out unchanged, everything else is
  JSON-encoded (objects with ``tolist()``, such as numpy arrays, are converted).
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = [
    "EntryScript", "InvalidInput", "encode_result", "load_entry_script", "prepare_input", "resolve_path",
    "result_as_json_value",
]


class InvalidInput(ValueError):
    """The payload cannot be handed to ``run()`` (for example a JSON body that is not JSON)."""


def resolve_path(value: str | None, default: str, base: Path) -> Path:
    """``value`` (or ``default``) as an absolute path; relative paths are taken relative to ``base``."""
    path = Path(value if value else default).expanduser()
    return path if path.is_absolute() else (base / path).resolve()


@dataclass
class EntryScript:
    path: Path
    module: ModuleType
    run: Callable[[Any], Any]

    def model_version(self) -> str | None:
        version = os.environ.get("MODEL_VERSION") or getattr(self.module, "MODEL_VERSION", None)
        return str(version) if version is not None else None


def load_entry_script(path: Path, model_dir: Path) -> EntryScript:
    """Import the script, export ``AZUREML_MODEL_DIR`` (absolute) and call ``init()`` once.

    Raises whatever the import or ``init()`` raises; the caller reports it and exits non-zero.
    """
    if not path.is_file():
        raise FileNotFoundError(f"entry script {path} does not exist (set ENTRY_SCRIPT)")
    os.environ["AZUREML_MODEL_DIR"] = str(model_dir)
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))  # scripts import their siblings, as under Azure ML
    spec = importlib.util.spec_from_file_location("entry_script", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import entry script {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["entry_script"] = module
    spec.loader.exec_module(module)
    for name in ("init", "run"):
        if not callable(getattr(module, name, None)):
            raise AttributeError(f"entry script {path} defines no {name}() function")
    module.init()
    return EntryScript(path, module, module.run)


def is_json_type(content_type: str | None) -> bool:
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def prepare_input(body: bytes, content_type: str | None, *, sniff_text: bool = False) -> str | bytes:
    """What ``run()`` receives. ``sniff_text``: treat a body without content type as text when it is UTF-8."""
    if is_json_type(content_type):
        try:
            text = body.decode("utf-8")
            json.loads(text)
        except (UnicodeDecodeError, ValueError) as exc:
            raise InvalidInput(f"body is declared {content_type} but is not valid JSON: {exc}") from None
        return text
    if sniff_text and not content_type:
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError:
            return body
    return body


def _default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    raise TypeError(f"run() returned a value of type {type(obj).__name__}, which is not JSON serializable")


def encode_result(result: Any) -> tuple[bytes, str]:
    """(body, content type) for what ``run()`` returned. Raises TypeError when it cannot be encoded."""
    if isinstance(result, (bytes, bytearray)):
        return bytes(result), "application/octet-stream"
    if isinstance(result, str):
        try:
            json.loads(result)
            return result.encode("utf-8"), "application/json"
        except ValueError:
            pass
    return json.dumps(result, default=_default).encode("utf-8"), "application/json"


def result_as_json_value(result: Any) -> Any:
    """A JSON value for a direct-method response."""
    body, content_type = encode_result(result)
    if content_type == "application/json":
        return json.loads(body)
    return {"base64": base64.b64encode(body).decode()}
