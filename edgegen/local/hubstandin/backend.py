"""The IoT Hub stand-in's backend: registry, twins, configurations, D2C messages. Python objects in and out.

No HTTP and no MQTT here: the wire layers call these methods and subscribe to change events
(``on_desired`` for twin desired patches pushed to connected modules, ``on_message`` for the live feed).
Every change is written through to the injected ``HubStore`` so a restart loses nothing.
"""

from __future__ import annotations

import base64
import copy
import datetime as _dt
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from edgegen.common.sas import generate_key
from edgegen.local.hubstandin.configurations import DeploymentsMixin
from edgegen.local.hubstandin.deployments import Configuration, check_etag, diff_patch, merge_patch
from edgegen.local.hubstandin.errors import (
    AlreadyExists,
    DeviceNotOnline,
    InvalidArgument,
    NotFound,
)
from edgegen.local.hubstandin.store import HubStore, StoredMessage

__all__ = ["HubBackend", "MethodInvoker"]

DesiredListener = Callable[[str, str | None, dict[str, Any], int], None]
MessageListener = Callable[[StoredMessage], None]
#: (device, module, method, payload, response timeout, connect timeout) -> (status, payload)
MethodInvoker = Callable[[str, str | None, str, Any, float, float], Awaitable[tuple[int, Any]]]
SYSTEM_MODULES = ("$edgeAgent", "$edgeHub")


def _twin_key(device_id: str, module_id: str | None) -> str:
    return f"{device_id}/{module_id}" if module_id else device_id


class HubBackend(DeploymentsMixin):
    def __init__(self, store: HubStore, host_name: str, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.host_name = host_name
        self.clock = clock
        self.devices: dict[str, dict[str, Any]] = store.load("device")
        self.modules: dict[str, dict[str, Any]] = store.load("module")
        self.twins: dict[str, dict[str, Any]] = store.load("twin")
        self.configs = {k: Configuration.from_dict(v) for k, v in store.load("config").items()}
        self.applied: dict[str, dict[str, Any]] = store.load("applied")
        meta = store.load("meta")
        self.counter: int = int(meta.get("counter", 0))
        self.policies: dict[str, dict[str, str]] = meta.get("policies") or {}
        if not self.policies:
            self.policies = {name: {"primaryKey": generate_key(), "secondaryKey": generate_key()}
                             for name in ("iothubowner", "service", "registryReadWrite")}
            store.put("meta", "policies", self.policies)
        self.desired_listeners: list[DesiredListener] = []
        self.message_listeners: list[MessageListener] = []
        self.method_invoker: MethodInvoker | None = None

    # ---- helpers -------------------------------------------------------------------------------------
    def _now(self) -> str:
        return _dt.datetime.fromtimestamp(self.clock(), _dt.UTC).isoformat().replace("+00:00", "Z")

    def _next(self) -> int:
        self.counter += 1
        self.store.put("meta", "counter", self.counter)
        return self.counter

    def _etag(self) -> str:
        return base64.b64encode(str(self._next()).encode()).decode()

    def connection_string(self, policy: str = "iothubowner") -> str:
        key = self.policies[policy]["primaryKey"]
        return f"HostName={self.host_name};SharedAccessKeyName={policy};SharedAccessKey={key}"

    # ---- registry ------------------------------------------------------------------------------------
    def get_device(self, device_id: str) -> dict[str, Any]:
        device = self.devices.get(device_id)
        if device is None:
            raise NotFound(f"device {device_id!r} not found", code="DeviceNotFound",
                           hint=f"create it first: edgegen hub device create {device_id} --edge")
        return device

    def list_devices(self, top: int | None = None) -> list[dict[str, Any]]:
        return list(self.devices.values())[: top or None]

    def put_device(self, device_id: str, body: Mapping[str, Any], if_match: str | None = None) -> dict[str, Any]:
        existing = self.devices.get(device_id)
        if existing is not None and if_match is None:
            raise AlreadyExists(f"device {device_id!r} already exists", code="DeviceAlreadyExists",
                                hint="pass an ETag (If-Match) to update it")
        if existing is None and if_match not in (None, "*", '"*"'):
            raise NotFound(f"device {device_id!r} not found", code="DeviceNotFound")
        if existing is not None:
            check_etag(if_match, existing["etag"], f"device {device_id}")
        if body.get("deviceId") not in (None, device_id):
            raise InvalidArgument(f"body deviceId {body.get('deviceId')!r} differs from the URL's {device_id!r}")
        auth = dict(body.get("authentication") or {})
        auth_type = auth.get("type") or "sas"
        if auth_type != "sas":
            raise InvalidArgument(f"authentication type {auth_type!r} is not supported by the local stand-in",
                                  hint="use symmetric keys (sas)")
        keys = dict(auth.get("symmetricKey") or {})
        old_keys = (existing or {}).get("authentication", {}).get("symmetricKey", {})
        keys = {k: keys.get(k) or old_keys.get(k) or generate_key() for k in ("primaryKey", "secondaryKey")}
        now = self._now()
        edge = bool((body.get("capabilities") or {}).get("iotEdge"))
        device = {
            "deviceId": device_id,
            "generationId": (existing or {}).get("generationId") or uuid.uuid4().hex[:18],
            "etag": self._etag(),
            "connectionState": (existing or {}).get("connectionState", "Disconnected"),
            "status": body.get("status") or "enabled",
            "statusReason": body.get("statusReason"),
            "connectionStateUpdatedTime": (existing or {}).get("connectionStateUpdatedTime", now),
            "statusUpdatedTime": now,
            "lastActivityTime": (existing or {}).get("lastActivityTime", now),
            "cloudToDeviceMessageCount": 0,
            "authentication": {"type": "sas", "symmetricKey": keys, "x509Thumbprint": {
                "primaryThumbprint": None, "secondaryThumbprint": None}},
            "capabilities": {"iotEdge": edge},
            "deviceScope": (existing or {}).get("deviceScope") or (f"ms-azure-iot-edge://{device_id}-{self.counter}"
                                                                   if edge else body.get("deviceScope")),
        }
        with self.store.batch():
            self.devices[device_id] = device
            self.store.put("device", device_id, device)
            if device_id not in self.twins:
                self._save_twin(device_id, None, self._new_twin())
            if edge:
                for module in SYSTEM_MODULES:
                    if _twin_key(device_id, module) not in self.modules:
                        self.put_module(device_id, module, {"managedBy": "iotEdge"})
            self._recompute([device_id])
        return device

    def delete_device(self, device_id: str, if_match: str | None = None) -> None:
        device = self.get_device(device_id)
        check_etag(if_match, device["etag"], f"device {device_id}")
        with self.store.batch():
            for key in [k for k in self.modules if k.startswith(device_id + "/")]:
                self.modules.pop(key)
                self.store.delete("module", key)
            for key in [k for k in self.twins if k == device_id or k.startswith(device_id + "/")]:
                self.twins.pop(key)
                self.store.delete("twin", key)
            self.devices.pop(device_id)
            self.store.delete("device", device_id)
            self.applied.pop(device_id, None)
            self.store.delete("applied", device_id)

    def get_module(self, device_id: str, module_id: str) -> dict[str, Any]:
        self.get_device(device_id)
        module = self.modules.get(_twin_key(device_id, module_id))
        if module is None:
            raise NotFound(f"module {module_id!r} not found on device {device_id!r}", code="ModuleNotFound")
        return module

    def list_modules(self, device_id: str) -> list[dict[str, Any]]:
        self.get_device(device_id)
        return [m for k, m in self.modules.items() if k.startswith(device_id + "/")]

    def put_module(self, device_id: str, module_id: str, body: Mapping[str, Any],
                   if_match: str | None = None) -> dict[str, Any]:
        self.get_device(device_id)
        key = _twin_key(device_id, module_id)
        existing = self.modules.get(key)
        if existing is not None and if_match is None:
            raise AlreadyExists(f"module {module_id!r} already exists on {device_id!r}",
                                code="ModuleAlreadyExistsOnDevice")
        if existing is not None:
            check_etag(if_match, existing["etag"], f"module {device_id}/{module_id}")
        keys = dict((body.get("authentication") or {}).get("symmetricKey") or {})
        old = (existing or {}).get("authentication", {}).get("symmetricKey", {})
        keys = {k: keys.get(k) or old.get(k) or generate_key() for k in ("primaryKey", "secondaryKey")}
        now = self._now()
        module = {
            "moduleId": module_id, "deviceId": device_id, "managedBy": body.get("managedBy") or "",
            "generationId": (existing or {}).get("generationId") or uuid.uuid4().hex[:18], "etag": self._etag(),
            "connectionState": (existing or {}).get("connectionState", "Disconnected"),
            "connectionStateUpdatedTime": now, "lastActivityTime": now, "cloudToDeviceMessageCount": 0,
            "authentication": {"type": "sas", "symmetricKey": keys},
        }
        self.modules[key] = module
        self.store.put("module", key, module)
        if key not in self.twins:
            self._save_twin(device_id, module_id, self._new_twin())
        return module

    def delete_module(self, device_id: str, module_id: str, if_match: str | None = None) -> None:
        module = self.get_module(device_id, module_id)
        check_etag(if_match, module["etag"], f"module {device_id}/{module_id}")
        key = _twin_key(device_id, module_id)
        self.modules.pop(key)
        self.store.delete("module", key)
        self.twins.pop(key, None)
        self.store.delete("twin", key)

    def identity_keys(self, device_id: str, module_id: str | None = None) -> list[str]:
        """Keys that may sign tokens for this identity: a device's own, or a module's own (as in IoT Hub, a
        device's key does not sign for its modules)."""
        device = self.get_device(device_id)
        record = self.get_module(device_id, module_id) if module_id else device
        return [k for k in record["authentication"]["symmetricKey"].values() if k]

    def device_scope_keys(self, device_id: str) -> list[str]:
        """Keys that may sign a device-scoped REST token (managing the device's module identities): an enabled
        edge device's own keys; none for other devices."""
        device = self.get_device(device_id)
        if device.get("status") != "enabled" or not (device.get("capabilities") or {}).get("iotEdge"):
            return []
        return [k for k in device["authentication"]["symmetricKey"].values() if k]

    def set_connection_state(self, device_id: str, module_id: str | None, connected: bool) -> None:
        record = self.modules.get(_twin_key(device_id, module_id)) if module_id else self.devices.get(device_id)
        if record is None:
            return
        record["connectionState"] = "Connected" if connected else "Disconnected"
        record["connectionStateUpdatedTime"] = record["lastActivityTime"] = self._now()
        self.store.put("module" if module_id else "device", _twin_key(device_id, module_id), record)

    # ---- twins ---------------------------------------------------------------------------------------
    @staticmethod
    def _new_twin() -> dict[str, Any]:
        return {"tags": {}, "desired": {}, "reported": {}, "desiredVersion": 1, "reportedVersion": 1, "version": 1,
                "configurations": {}}

    def _save_twin(self, device_id: str, module_id: str | None, twin: dict[str, Any]) -> None:
        key = _twin_key(device_id, module_id)
        self.twins[key] = twin
        self.store.put("twin", key, twin)

    def _twin(self, device_id: str, module_id: str | None) -> dict[str, Any]:
        if module_id:
            self.get_module(device_id, module_id)
        else:
            self.get_device(device_id)
        return self.twins.setdefault(_twin_key(device_id, module_id), self._new_twin())

    @staticmethod
    def twin_etag(twin: Mapping[str, Any]) -> str:
        return base64.b64encode(int(twin["version"]).to_bytes(8, "big")).decode()

    def get_twin(self, device_id: str, module_id: str | None = None) -> dict[str, Any]:
        twin = self._twin(device_id, module_id)
        device = self.devices[device_id]
        record = self.modules[_twin_key(device_id, module_id)] if module_id else device
        doc: dict[str, Any] = {"deviceId": device_id}
        if module_id:
            doc["moduleId"] = module_id
        doc.update({
            "etag": self.twin_etag(twin), "deviceEtag": device["etag"], "status": device["status"],
            "statusUpdateTime": device["statusUpdatedTime"], "connectionState": record["connectionState"],
            "lastActivityTime": record["lastActivityTime"], "cloudToDeviceMessageCount": 0,
            "authenticationType": "sas", "x509Thumbprint": {"primaryThumbprint": None, "secondaryThumbprint": None},
            "modelId": "", "version": twin["version"], "tags": copy.deepcopy(twin["tags"]),
            "properties": {
                "desired": {**copy.deepcopy(twin["desired"]), "$version": twin["desiredVersion"]},
                "reported": {**copy.deepcopy(twin["reported"]), "$version": twin["reportedVersion"]},
            },
            "capabilities": device["capabilities"],
        })
        if not module_id:
            doc["configurations"] = copy.deepcopy(twin.get("configurations") or {})
            doc["deviceScope"] = device.get("deviceScope")
        return doc

    def _set_desired(self, device_id: str, module_id: str | None, desired: dict[str, Any]) -> None:
        twin = self._twin(device_id, module_id)
        patch = diff_patch(twin["desired"], desired)
        if not patch:
            return
        twin["desired"] = desired
        twin["desiredVersion"] += 1
        twin["version"] += 1
        self._save_twin(device_id, module_id, twin)
        for listener in self.desired_listeners:
            listener(device_id, module_id, patch, twin["desiredVersion"])

    def update_twin(self, device_id: str, module_id: str | None, body: Mapping[str, Any],
                    if_match: str | None = None, replace: bool = False) -> dict[str, Any]:
        """Service-side PATCH (merge) or PUT (replace) of tags and desired properties."""
        twin = self._twin(device_id, module_id)
        check_etag(if_match, self.twin_etag(twin), f"twin {_twin_key(device_id, module_id)}")
        props = body.get("properties") or {}
        strip = {k: v for k, v in (props.get("desired") or {}).items() if not k.startswith("$")}
        with self.store.batch():
            if "tags" in body or replace:
                tags = body.get("tags") or {}
                new_tags = dict(tags) if replace else merge_patch(twin["tags"], tags)
                if new_tags != twin["tags"]:
                    twin["tags"] = new_tags
                    twin["version"] += 1
                    self._save_twin(device_id, module_id, twin)
            if "desired" in props or replace:
                self._set_desired(device_id, module_id, dict(strip) if replace else merge_patch(twin["desired"], strip))
            if not module_id:
                self._recompute([device_id])
        return self.get_twin(device_id, module_id)

    def device_twin_view(self, device_id: str, module_id: str | None) -> dict[str, Any]:
        """What a device gets on ``$iothub/twin/GET``: desired and reported with their ``$version``."""
        doc = self.get_twin(device_id, module_id)["properties"]
        return {"desired": doc["desired"], "reported": doc["reported"]}

    def update_reported(self, device_id: str, module_id: str | None, patch: Mapping[str, Any]) -> int:
        twin = self._twin(device_id, module_id)
        twin["reported"] = merge_patch(twin["reported"], dict(patch))
        twin["reportedVersion"] += 1
        twin["version"] += 1
        self._save_twin(device_id, module_id, twin)
        if module_id is None and self.configs:  # target conditions may look at reported properties
            self._recompute([device_id])
        return int(twin["reportedVersion"])

    def twin_doc(self, device_id: str) -> dict[str, Any]:
        """The document target conditions and queries see for a device."""
        twin = self.twins.get(device_id) or self._new_twin()
        device = self.devices[device_id]
        return {"deviceId": device_id, "tags": twin["tags"], "status": device["status"],
                "properties": {"desired": twin["desired"], "reported": twin["reported"]},
                "capabilities": device["capabilities"], "configurations": twin.get("configurations") or {}}

    # ---- device-to-cloud messages and methods --------------------------------------------------------
    def record_message(self, device_id: str, module_id: str | None, properties: Mapping[str, str],
                       system_properties: Mapping[str, Any], body: bytes) -> StoredMessage:
        now = self._now()
        sysprops = {**system_properties, "iothub-connection-device-id": device_id,
                    "iothub-enqueuedtime": now, "iothub-connection-auth-method": '{"scope":"module","type":"sas"}'}
        if module_id:
            sysprops["iothub-connection-module-id"] = module_id
        stored = self.store.append_message(
            StoredMessage(0, device_id, module_id, now, sysprops, dict(properties), bytes(body)))
        for listener in self.message_listeners:
            listener(stored)
        return stored

    def messages(self, after_seq: int = 0, limit: int = 1000) -> list[StoredMessage]:
        return self.store.messages(after_seq, limit)

    async def invoke_method(self, device_id: str, module_id: str | None, name: str, payload: Any,
                            timeout: float, connect_timeout: float = 0.0) -> tuple[int, Any]:
        """The target's (status, payload); NotFound for an unknown identity, DeviceNotOnline when it is not
        connected with methods subscribed within ``connect_timeout``, MethodTimeout after ``timeout``."""
        if module_id:
            self.get_module(device_id, module_id)
        else:
            self.get_device(device_id)
        if self.method_invoker is None:
            target = f"{device_id}/{module_id}" if module_id else device_id
            raise DeviceNotOnline(f"{target} is not connected", connect_timeout=connect_timeout,
                                  hint="start the device runtime first")
        return await self.method_invoker(device_id, module_id, name, payload, timeout, connect_timeout)
