"""Module identities of the local device: a symmetric key and a generation id per module.

Kept in ``<state>/identities.json`` (mode 0600, written atomically). The key is what the edge hub checks SAS
tokens against and what the workload API signs with; modules never see it (``edgegen device modulecred`` prints
it on request, for running one module under a debugger).
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

from edgegen.common.private import repair_private, write_private
from edgegen.common.sas import generate_key
from edgegen.errors import Location
from edgegen.local.errors import DeviceError
from edgegen.local.workload import ModuleKey

__all__ = ["IdentityBook"]


class IdentityBook:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._keys: dict[str, ModuleKey] = {}
        if self.path.exists():
            repair_private(self.path)
            try:
                data = json.loads(self.path.read_text())
                self._keys = {m: ModuleKey(v["key"], v["generationId"]) for m, v in data["modules"].items()}
            except (ValueError, KeyError, TypeError) as exc:
                raise DeviceError(f"identity file is unreadable: {exc}", location=Location(file=str(self.path)),
                                  hint="delete it; new keys are made on the next start") from None

    def get(self, module: str) -> ModuleKey | None:
        return self._keys.get(module)

    def ensure(self, modules: list[str]) -> None:
        """Give every module in ``modules`` a key (existing ones are kept)."""
        missing = [m for m in modules if m not in self._keys]
        for m in missing:
            self._keys[m] = ModuleKey(generate_key(), secrets.token_hex(8))
        if missing or not self.path.exists():
            self._save()

    def retain(self, modules: list[str]) -> list[str]:
        """Remove the identities of modules not in ``modules`` (a module's identity goes when the module goes, as
        edgeAgent deletes it); return the names removed. A module deployed again later gets a new key."""
        gone = sorted(m for m in self._keys if m not in modules)
        for m in gone:
            del self._keys[m]
        if gone:
            self._save()
        return gone

    def modules(self) -> list[str]:
        return sorted(self._keys)

    def _save(self) -> None:
        data = {"modules": {m: {"key": k.key, "generationId": k.generation_id} for m, k in sorted(self._keys.items())}}
        write_private(self.path, json.dumps(data, indent=1))
