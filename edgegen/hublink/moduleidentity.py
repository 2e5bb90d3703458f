"""Module identities of an edge device, as edgeAgent manages them: with the device's own credentials.

A real IoT Hub lets a module connect only with a token signed by that module's key. An edge device gets
those keys through the service REST API, authenticated with a *device-scoped* SAS token (resource
``{host}/devices/{deviceId}``, no policy name, signed with the device key):

- ``GET /devices/{deviceId}/modules/{moduleId}`` → the module identity with
  ``authentication.symmetricKey.primaryKey``;
- ``PUT /devices/{deviceId}/modules/{moduleId}`` with ``{"deviceId", "moduleId", "managedBy": "iotEdge",
  "authentication": {"type": "sas"}}`` creates it (the hub generates the keys); with ``If-Match: *`` it updates
  an existing one whose keys are missing, keeping any it has.

``ModuleIdentities.key(module_id)`` does that (blocking; call it off the event loop) and caches the keys in the
device's state directory (``hub-module-keys.json``, 0600, written atomically), so a restart needs no REST call.
``ModuleIdentities.prune(keep)`` removes what edgeAgent removes: the identities it manages
(``managedBy: iotEdge``) of modules no longer in the deployment (``GET /devices/{id}/modules``, then
``DELETE /devices/{id}/modules/{m}``); the system modules stay. The same calls work against Azure IoT Hub and
the local stand-in.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any
from urllib.parse import quote

from edgegen.common.private import write_private
from edgegen.common.sas import generate_sas_token
from edgegen.hub.errors import HubClientError, hub_error

__all__ = ["API_VERSION", "CACHE_FILE", "SYSTEM_MODULES", "ModuleIdentities", "device_scope_token"]

API_VERSION = "2021-04-12"
CACHE_FILE = "hub-module-keys.json"
TIMEOUT = 15.0
SYSTEM_MODULES = frozenset({"$edgeAgent", "$edgeHub"})


def device_scope_token(host: str, device_id: str, device_key: str, ttl: int = 3600) -> str:
    """A SAS token for ``{host}/devices/{deviceId}`` signed with the device key (no ``skn``)."""
    return generate_sas_token(f"{host}/devices/{device_id}", device_key, ttl=ttl)


class ModuleIdentities:
    """Create/read an edge device's module identities with its device key; cache their keys.

    ``host`` is the device connection string's HostName (what tokens name); ``rest_host`` where the REST API
    listens (Azure: the same host on 443; the local stand-in: ``127.x:port``).
    """

    def __init__(self, host: str, device_id: str, device_key: str, *, rest_host: str | None = None,
                 ca_file: str | None = None, cache_dir: Path | None = None) -> None:
        self.host = host
        self.rest_host = rest_host or host
        self.device_id = device_id
        self.device_key = device_key
        self.verify: str | bool = ca_file or True
        self.cache_path = Path(cache_dir) / CACHE_FILE if cache_dir is not None else None
        self._lock = threading.Lock()
        self._keys = self._load()

    # ---- cache ---------------------------------------------------------------------------------------
    def _load(self) -> dict[str, str]:
        if self.cache_path is None or not self.cache_path.is_file():
            return {}
        try:
            doc = json.loads(self.cache_path.read_text())
        except (OSError, ValueError):
            return {}  # a damaged cache is only a cache: the keys are fetched again
        if not isinstance(doc, dict) or doc.get("hostName") != self.host or doc.get("deviceId") != self.device_id:
            return {}
        modules = doc.get("modules")
        return {str(k): str(v) for k, v in modules.items() if isinstance(v, str)} if isinstance(modules, dict) else {}

    def _save(self) -> None:
        if self.cache_path is None:
            return
        doc = {"hostName": self.host, "deviceId": self.device_id, "modules": dict(sorted(self._keys.items()))}
        write_private(self.cache_path, json.dumps(doc, indent=2) + "\n")

    def cached(self, module_id: str) -> str | None:
        return self._keys.get(module_id)

    def forget(self, module_id: str) -> None:
        with self._lock:
            if self._keys.pop(module_id, None) is not None:
                self._save()

    # ---- REST ----------------------------------------------------------------------------------------
    def _url(self, module_id: str) -> str:
        base = f"https://{self.rest_host}/devices/{quote(self.device_id, safe='')}/modules"
        return f"{base}/{quote(module_id, safe='$')}?api-version={API_VERSION}" if module_id else \
            f"{base}?api-version={API_VERSION}"

    def _request(self, method: str, module_id: str, body: dict[str, Any] | None = None,
                 if_match: str | None = None) -> tuple[int, Any]:
        """One REST call about ``module_id`` ('' for the device's module list)."""
        import requests

        headers = {"Authorization": device_scope_token(self.host, self.device_id, self.device_key),
                   "Content-Type": "application/json"}
        if if_match:
            headers["If-Match"] = if_match
        try:
            resp = requests.request(method, self._url(module_id), headers=headers, timeout=TIMEOUT,
                                    data=json.dumps(body) if body is not None else None, verify=self.verify)
        except requests.RequestException as exc:
            raise HubClientError(f"cannot reach the hub's REST API at {self.rest_host} to get the identity of "
                                 f"module {module_id!r} ({type(exc).__name__}: {exc})",
                                 hint="is the hub running and its CA right (--ca-file)?") from None
        try:
            payload = resp.json() if resp.content else None
        except ValueError:
            payload = resp.text
        return resp.status_code, payload

    def _fail(self, action: str, module_id: str, status: int, payload: Any) -> HubClientError:
        hint = ("the hub refused the device's own key: is this an edge device (--edge) and the connection "
                "string current?" if status == 401 else None)
        return hub_error(f"{action} module identity {self.device_id}/{module_id} failed: HTTP {status} {payload}",
                         status, hint=hint)

    def fetch(self, module_id: str) -> str:
        """Ensure the module identity exists and return its primary key (a REST round trip)."""
        status, doc = self._request("GET", module_id)
        if status == 404:
            body = {"deviceId": self.device_id, "moduleId": module_id, "managedBy": "iotEdge",
                    "authentication": {"type": "sas"}}
            status, doc = self._request("PUT", module_id, body)
            if status == 409:  # created meanwhile (another runtime, a deployment): read it
                status, doc = self._request("GET", module_id)
        elif status == 200 and not _primary_key(doc):  # exists without keys: let the hub generate them
            body = {"deviceId": self.device_id, "moduleId": module_id, "managedBy": (doc or {}).get("managedBy")
                    or "iotEdge", "authentication": {"type": "sas"}}
            status, doc = self._request("PUT", module_id, body, if_match="*")
        if status not in (200, 201):
            raise self._fail("getting", module_id, status, doc)
        key = _primary_key(doc)
        if not key:
            raise HubClientError(f"the hub returned module identity {self.device_id}/{module_id} without a "
                                 "symmetric key", hint="the module must use SAS authentication")
        return key

    def key(self, module_id: str, *, refresh: bool = False) -> str:
        """The module's primary key: from the cache, or fetched (and the identity created) and cached."""
        with self._lock:
            if not refresh and module_id in self._keys:
                return self._keys[module_id]
        key = self.fetch(module_id)
        with self._lock:
            self._keys[module_id] = key
            self._save()
        return key


    def prune(self, keep: set[str]) -> list[str]:
        """Delete the identities this runtime manages whose modules are not in ``keep``; returns their ids."""
        status, modules = self._request("GET", "")
        if status != 200 or not isinstance(modules, list):
            raise self._fail("listing", "*", status, modules)
        gone = [m["moduleId"] for m in modules if isinstance(m, dict) and m.get("managedBy") == "iotEdge"
                and m.get("moduleId") not in keep and m.get("moduleId") not in SYSTEM_MODULES]
        for module_id in gone:
            status, doc = self._request("DELETE", module_id, if_match="*")
            if status not in (200, 204, 404):
                raise self._fail("deleting", module_id, status, doc)
            self.forget(module_id)
        return gone


def _primary_key(doc: Any) -> str | None:
    if not isinstance(doc, dict):
        return None
    keys = ((doc.get("authentication") or {}).get("symmetricKey") or {})
    return keys.get("primaryKey") or None
