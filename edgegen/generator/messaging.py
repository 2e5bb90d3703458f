"""Whether a module's code uses edgeHub messaging: a fact for the route lint, read from the module folder.

A module with no route to or from it is a mistake only if it sends or receives edgeHub messages; many modules
never do (HTTP servers, databases, MQTT brokers, agents). ``uses_messaging(folder)`` looks for the Azure IoT
SDKs' messaging calls in the folder's source files (Python, C#, Node.js, Java, C): bounded (at most
``MAX_FILES`` files of at most ``MAX_BYTES`` each, build and dependency folders skipped), never raises.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

__all__ = ["MAX_BYTES", "MAX_FILES", "messaging_of", "uses_messaging"]

MAX_FILES = 200
MAX_BYTES = 512 * 1024
_SUFFIXES = (".py", ".cs", ".js", ".ts", ".java", ".c", ".cpp", ".h")
_SKIP_DIRS = {"node_modules", "bin", "obj", "build", "dist", "target", ".git", "venv", ".venv", "__pycache__"}
# The SDKs' calls that send to an output or receive on an input (module clients, every supported language).
_CALLS = re.compile(
    r"send_message_to_output|on_message_received|receive_message_on_input|message_received_handler"  # Python
    r"|SendEventAsync|SendEventBatchAsync|SetInputMessageHandlerAsync|SetMessageHandlerAsync"  # C#
    r"|sendOutputEvent|sendOutputEventBatch|['\"]inputMessage['\"]"  # Node.js
    r"|sendEventAsync|setMessageCallback"  # Java
    r"|SendEventToOutputAsync|SetInputMessageCallback"  # C
)


def uses_messaging(folder: Path) -> bool:
    """True when a source file of ``folder`` calls an SDK messaging API."""
    seen = 0
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and not d.startswith("."))
        for name in sorted(files):
            if not name.endswith(_SUFFIXES):
                continue
            seen += 1
            if seen > MAX_FILES:
                return False
            try:
                with open(os.path.join(root, name), "rb") as fh:
                    data = fh.read(MAX_BYTES)
            except OSError:
                continue
            if _CALLS.search(data.decode("utf-8", errors="replace")):
                return True
    return False


def messaging_of(images: Mapping[str, str], folders: Iterable[tuple[Path, Iterable[str]]]) -> dict[str, bool]:
    """module → uses_messaging, for the modules whose image is built from one of ``folders``
    (``(folder, the image tags its module.json gives)``). Modules from other images are left out (unknown)."""
    by_tag: dict[str, Path] = {}
    for folder, tags in folders:
        for tag in tags:
            by_tag.setdefault(tag, folder)
    cache: dict[Path, bool] = {}
    out: dict[str, bool] = {}
    for module, image in images.items():
        folder = by_tag.get(image)
        if folder is not None:
            if folder not in cache:
                cache[folder] = uses_messaging(folder)
            out[module] = cache[folder]
    return out
