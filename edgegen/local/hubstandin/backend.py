"""The IoT Hub stand-in's backend: registry, twins, queries, configurations, D2C messages. Python objects in and out.

No HTTP and no MQTT here: the wire layers call these methods and subscribe to change events
(``on_desired`` for twin desired patches pushed to connected modules, ``on_message`` for the live feed).
Every change is written through to the injected ``HubStore`` so a restart loses nothing.

Module identities are made by whoever asks for them — on a real edge device that is edgeAgent, with the
device's own key (``PUT /devices/{id}/modules/{m}``) — never by the hub when a deployment arrives; a new
module identity's twin gets its desired properties from the deployment (and module configurations) at once.
"""

from __future__ import annotations

import base64
import copy
import datetime as _dt
import time
import zlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from edgegen.common.sas import generate_key
from edgegen.local.hubstandin.c2d import CloudToDevice
from edgegen.local.hubstandin.configurations import DeploymentsMixin
from edgegen.local.hubstandin.deployments import Configuration, check_etag, diff_patch, merge_patch
from edgegen.local.hubstandin.errors import AlreadyExists, DeviceNotOnline, InvalidArgument, NotFound
from edgegen.local.hubstandin.feed import FEED_DEVICE
from edgegen.local.hubstandin.identities import device_record, module_record
from edgegen.local.hubstandin.query import CompiledQuery, QueryError, Source, compile_query, page_rows
from edgegen.local.hubstandin.rights import DEFAULT_POLICY_RIGHTS
from edgegen.local.hubstandin.scopes import make_scope, resolve_scopes
from edgegen.local.hubstandin.store import HubStore, StoredMessage
from edgegen.local.hubstandin.twins import (
    device_twin_properties,
    full_meta,
    new_twin,
    touch_meta,
    twin_document,
    twin_etag,
)

__all__ = ["HubBackend", "IncomingMessage", "MethodInvoker", "QueryResult"]

DesiredListener = Callable[[str, str | None, dict[str, Any], int], None]
MessageListener = Callable[[StoredMessage], None]
#: (device, module or None, deleted): that identity's credentials no longer hold — disabled, deleted or keys
#: regenerated; its live connections must close now (``deleted``: and its sessions go).
RevokedListener = Callable[[str, str | None, bool], None]
BatchListener = Callable[[list[StoredMessage]], None]
#: (device, module, application properties, system properties, body) of a message arriving from a device
IncomingMessage = tuple[str, str | None, Mapping[str, str], Mapping[str, Any], bytes]
#: (device, module, method, payload, response timeout, connect timeout) -> (status, payload)
MethodInvoker = Callable[[str, str | None, str, Any, float, float], Awaitable[tuple[int, Any]]]
SYSTEM_MODULES = ("$edgeAgent", "$edgeHub")
DEFAULT_PARTITIONS = 4  # IoT Hub's default for the built-in endpoint
DEFAULT_CONSUMER_GROUP = "$Default"
EVENT_HUB_NAME = "edgegen-local-hub"  # the Event Hub-compatible name (EntityPath)


def partition_for(device_id: str, partitions: int) -> int:
    """A device's messages all go to one partition (stable across restarts and processes)."""
    return zlib.crc32(device_id.encode()) % partitions


def _twin_key(device_id: str, module_id: str | None) -> str:
    return f"{device_id}/{module_id}" if module_id else device_id


def _strip(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if not k.startswith("$")}


@dataclass(frozen=True)
class QueryResult:
    """One page of ``POST /devices/query``."""

    items: list[Any]
    item_type: str  # x-ms-item-type
    continuation: str | None  # x-ms-continuation


class HubBackend(DeploymentsMixin):
    def __init__(self, store: HubStore, host_name: str, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.host_name = host_name
        self.clock = clock
        self.devices: dict[str, dict[str, Any]] = store.load("device")
        self.modules: dict[str, dict[str, Any]] = store.load("module")
        self.twins: dict[str, dict[str, Any]] = store.load("twin")
        for twin in self.twins.values():  # twins stored before $metadata was kept
            for section in ("desired", "reported"):
                if f"{section}Meta" not in twin:
                    version = twin[f"{section}Version"] if section == "desired" else None
                    twin[f"{section}Meta"] = full_meta(twin[section], self._now(), version)
        self.configs = {k: Configuration.from_dict(v) for k, v in store.load("config").items()}
        self.applied: dict[str, dict[str, Any]] = store.load("applied")
        meta = store.load("meta")
        self.counter: int = int(meta.get("counter", 0))
        self.policies: dict[str, dict[str, str]] = meta.get("policies") or {}
        missing = [name for name in DEFAULT_POLICY_RIGHTS if name not in self.policies]
        if missing:  # IoT Hub's five built-in policies (stores of older versions had three)
            for name in missing:
                self.policies[name] = {"primaryKey": generate_key(), "secondaryKey": generate_key()}
            store.put("meta", "policies", self.policies)
        self.partition_count = int(meta.get("partitions") or DEFAULT_PARTITIONS)
        store.put("meta", "partitions", self.partition_count)
        self.consumer_groups: list[str] = list(meta.get("consumerGroups") or [DEFAULT_CONSUMER_GROUP])
        self.event_hub_name = EVENT_HUB_NAME
        self.created_at = float(meta.get("createdAt") or clock())
        store.put("meta", "createdAt", self.created_at)
        self.desired_listeners: list[DesiredListener] = []
        self.message_listeners: list[MessageListener] = []
        self.revoked_listeners: list[RevokedListener] = []
        self.batch_listeners: list[BatchListener] = []
        self.method_invoker: MethodInvoker | None = None
        self.c2d = CloudToDevice(store, self._generation_id, clock)

    def _generation_id(self, device_id: str) -> str:
        return str(self.get_device(device_id)["generationId"])

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

    def event_hub_connection_string(self, address: str, policy: str = "iothubowner") -> str:
        """What the portal shows as the built-in endpoint's "Event Hub-compatible endpoint" (AMQP on 5671)."""
        key = self.policies[policy]["primaryKey"]
        return (f"Endpoint=sb://{address}/;SharedAccessKeyName={policy};SharedAccessKey={key};"
                f"EntityPath={self.event_hub_name}")

    # ---- consumer groups of the built-in endpoint ---------------------------------------------------------
    def create_consumer_group(self, name: str) -> list[str]:
        if not name or len(name) > 50 or not all(c.isalnum() or c in "-._$" for c in name):
            raise InvalidArgument(f"consumer group name {name!r} is not valid",
                                  hint="use up to 50 letters, digits, '-', '.' or '_'")
        if name in self.consumer_groups:
            raise AlreadyExists(f"consumer group {name!r} already exists")
        self.consumer_groups.append(name)
        self.store.put("meta", "consumerGroups", self.consumer_groups)
        return list(self.consumer_groups)

    def delete_consumer_group(self, name: str) -> None:
        if name == DEFAULT_CONSUMER_GROUP:
            raise InvalidArgument("the $Default consumer group cannot be deleted")
        if name not in self.consumer_groups:
            raise NotFound(f"consumer group {name!r} not found")
        self.consumer_groups.remove(name)
        self.store.put("meta", "consumerGroups", self.consumer_groups)

    def _revoked(self, device_id: str, module_id: str | None, deleted: bool) -> None:
        for listener in self.revoked_listeners:
            listener(device_id, module_id, deleted)

    @staticmethod
    def _keys_of(record: Mapping[str, Any] | None) -> dict[str, Any]:
        return dict(((record or {}).get("authentication") or {}).get("symmetricKey") or {})

    # ---- registry: devices ---------------------------------------------------------------------------
    def get_device(self, device_id: str) -> dict[str, Any]:
        device = self.devices.get(device_id)
        if device is None:
            raise NotFound(f"device {device_id!r} not found", code="DeviceNotFound",
                           hint=f"create it first: edgegen hub device create {device_id} --edge")
        return device

    def list_devices(self, top: int | None = None) -> list[dict[str, Any]]:
        return list(self.devices.values())[: top or None]

    def put_device(self, device_id: str, body: Mapping[str, Any], if_match: str | None = None) -> dict[str, Any]:
        if device_id == FEED_DEVICE:
            raise InvalidArgument(f"the device id {FEED_DEVICE!r} is reserved for the stand-in's live feed")
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
        edge = bool((body.get("capabilities") or {}).get("iotEdge"))
        scope, parents = resolve_scopes(device_id, edge, body, existing, self.devices,
                                        make_scope(device_id, self.counter + 1))
        device = device_record(device_id, body, existing, etag=self._etag(), now=self._now(), scope=scope,
                               parents=parents)
        with self.store.batch():
            self.devices[device_id] = device
            self.store.put("device", device_id, device)
            was_edge = existing is not None and existing["capabilities"].get("iotEdge")
            if was_edge and existing.get("deviceScope") and existing["deviceScope"] != scope:
                self._orphan_children(existing["deviceScope"])  # no longer an edge device: no children
            if device_id not in self.twins:
                self._save_twin(device_id, None, new_twin())
            if edge:  # IoT Hub gives every edge device its two system module identities
                for module in SYSTEM_MODULES:
                    if _twin_key(device_id, module) not in self.modules:
                        self.put_module(device_id, module, {"managedBy": "iotEdge"})
            self._recompute([device_id])
        if existing is not None:
            if device["status"] != "enabled" and existing.get("status") == "enabled":
                for key in [k for k in self.modules if k.startswith(device_id + "/")]:  # its modules go too
                    self._revoked(device_id, key.split("/", 1)[1], False)
                self._revoked(device_id, None, False)
            elif self._keys_of(device) != self._keys_of(existing):
                self._revoked(device_id, None, False)
        return device

    def _orphan_children(self, scope: str) -> None:
        """Devices whose parent was ``scope`` (deleted, or no longer an edge device) lose that parent."""
        for child_id, child in self.devices.items():
            if scope in (child.get("parentScopes") or []):
                child["parentScopes"] = []
                if not child["capabilities"].get("iotEdge"):
                    child["deviceScope"] = None
                child["etag"] = self._etag()
                self.store.put("device", child_id, child)

    def delete_device(self, device_id: str, if_match: str | None = None) -> None:
        device = self.get_device(device_id)
        check_etag(if_match, device["etag"], f"device {device_id}")
        modules = [k.split("/", 1)[1] for k in self.modules if k.startswith(device_id + "/")]
        with self.store.batch():
            for module_id in modules:
                key = _twin_key(device_id, module_id)
                self.modules.pop(key)
                self.store.delete("module", key)
            for key in [k for k in self.twins if k == device_id or k.startswith(device_id + "/")]:
                self.twins.pop(key)
                self.store.delete("twin", key)
            self.devices.pop(device_id)
            self.store.delete("device", device_id)
            self.applied.pop(device_id, None)
            self.store.delete("applied", device_id)
            if device["capabilities"].get("iotEdge") and device.get("deviceScope"):
                self._orphan_children(device["deviceScope"])
        for module_id in modules:
            self._revoked(device_id, module_id, True)
        self._revoked(device_id, None, True)

    # ---- registry: modules ---------------------------------------------------------------------------
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
        if body.get("moduleId") not in (None, module_id):
            raise InvalidArgument(f"body moduleId {body.get('moduleId')!r} differs from the URL's {module_id!r}")
        module = module_record(device_id, module_id, body, existing, etag=self._etag(), now=self._now())
        with self.store.batch():
            self.modules[key] = module
            self.store.put("module", key, module)
            if key not in self.twins:
                self._save_twin(device_id, module_id, new_twin())
                if module_id not in SYSTEM_MODULES:  # its desired properties from the deployment, at once
                    self._recompute([device_id])
        if existing is not None and self._keys_of(module) != self._keys_of(existing):
            self._revoked(device_id, module_id, False)
        return module

    def delete_module(self, device_id: str, module_id: str, if_match: str | None = None) -> None:
        module = self.get_module(device_id, module_id)
        check_etag(if_match, module["etag"], f"module {device_id}/{module_id}")
        key = _twin_key(device_id, module_id)
        with self.store.batch():
            self.modules.pop(key)
            self.store.delete("module", key)
            self.twins.pop(key, None)
            self.store.delete("twin", key)
        self._revoked(device_id, module_id, True)

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

    def statistics(self) -> dict[str, int]:
        """``GET /statistics/devices`` and ``/statistics/service`` in one."""
        enabled = sum(1 for d in self.devices.values() if d["status"] == "enabled")
        connected = sum(1 for d in self.devices.values() if d.get("connectionState") == "Connected")
        return {"totalDeviceCount": len(self.devices), "enabledDeviceCount": enabled,
                "disabledDeviceCount": len(self.devices) - enabled, "connectedDeviceCount": connected}

    # ---- twins ---------------------------------------------------------------------------------------
    def _save_twin(self, device_id: str, module_id: str | None, twin: dict[str, Any]) -> None:
        key = _twin_key(device_id, module_id)
        self.twins[key] = twin
        self.store.put("twin", key, twin)

    def _twin(self, device_id: str, module_id: str | None) -> dict[str, Any]:
        if module_id:
            self.get_module(device_id, module_id)
        else:
            self.get_device(device_id)
        return self.twins.setdefault(_twin_key(device_id, module_id), new_twin())

    @staticmethod
    def twin_etag(twin: Mapping[str, Any]) -> str:
        return twin_etag(twin)

    def get_twin(self, device_id: str, module_id: str | None = None) -> dict[str, Any]:
        twin = self._twin(device_id, module_id)
        module = self.modules[_twin_key(device_id, module_id)] if module_id else None
        return twin_document(self.devices[device_id], module, twin)

    def twin_doc(self, device_id: str, module_id: str | None = None) -> dict[str, Any]:
        """The twin as conditions and queries see it, sharing the stored values (read only)."""
        module = self.modules[_twin_key(device_id, module_id)] if module_id else None
        twin = self.twins.get(_twin_key(device_id, module_id)) or new_twin()
        return twin_document(self.devices[device_id], module, twin, copy_values=False)

    def _set_desired(self, device_id: str, module_id: str | None, desired: dict[str, Any]) -> None:
        twin = self._twin(device_id, module_id)
        patch = diff_patch(twin["desired"], desired)
        if not patch:
            return
        twin["desired"] = desired
        twin["desiredVersion"] += 1
        twin["version"] += 1
        twin["desiredMeta"] = touch_meta(twin.get("desiredMeta") or {}, patch, desired, self._now(),
                                         twin["desiredVersion"])
        self._save_twin(device_id, module_id, twin)
        for listener in self.desired_listeners:
            listener(device_id, module_id, patch, twin["desiredVersion"])

    def update_twin(self, device_id: str, module_id: str | None, body: Mapping[str, Any],
                    if_match: str | None = None, replace: bool = False) -> dict[str, Any]:
        """Service-side PATCH (merge) or PUT (replace) of tags and desired properties."""
        twin = self._twin(device_id, module_id)
        check_etag(if_match, self.twin_etag(twin), f"twin {_twin_key(device_id, module_id)}")
        props = body.get("properties") or {}
        if not isinstance(props, Mapping) or not isinstance(props.get("desired") or {}, Mapping) \
                or not isinstance(body.get("tags") or {}, Mapping):
            raise InvalidArgument("tags and properties.desired must be JSON objects")
        desired = _strip(props.get("desired") or {})
        with self.store.batch():
            if "tags" in body or replace:
                tags = body.get("tags") or {}
                new_tags = dict(tags) if replace else merge_patch(twin["tags"], tags)
                if new_tags != twin["tags"]:
                    twin["tags"] = new_tags
                    twin["version"] += 1
                    self._save_twin(device_id, module_id, twin)
            if "desired" in props or replace:
                self._set_desired(device_id, module_id, desired if replace else merge_patch(twin["desired"], desired))
            self._recompute([device_id])
        return self.get_twin(device_id, module_id)

    def device_twin_view(self, device_id: str, module_id: str | None) -> dict[str, Any]:
        """What a device gets on ``$iothub/twin/GET``: desired and reported with their ``$version``."""
        return device_twin_properties(self._twin(device_id, module_id))

    def update_reported(self, device_id: str, module_id: str | None, patch: Mapping[str, Any]) -> int:
        """A device's (or module's) reported-properties patch; returns the new reported ``$version``."""
        twin = self._twin(device_id, module_id)
        clean = _strip(patch)
        after = merge_patch(twin["reported"], clean)
        twin["reported"] = after
        twin["reportedVersion"] += 1
        twin["version"] += 1
        twin["reportedMeta"] = touch_meta(twin.get("reportedMeta") or {}, clean, after, self._now(), None)
        with self.store.batch():
            self._save_twin(device_id, module_id, twin)
            if self.configs:  # target conditions may look at reported properties
                self._recompute([device_id])
        return int(twin["reportedVersion"])

    # ---- queries -------------------------------------------------------------------------------------
    def documents(self, source: Source) -> list[dict[str, Any]]:
        """Every twin of a collection, sorted by id, as queries see them (read only)."""
        if source is Source.MODULES:
            keys = sorted(self.modules, key=lambda k: tuple(k.split("/", 1)))
            return [self.twin_doc(*k.split("/", 1)) for k in keys]
        return [self.twin_doc(d) for d in sorted(self.devices)]

    @staticmethod
    def compile_query(text: str) -> CompiledQuery:
        try:
            return compile_query(text)
        except QueryError as exc:
            raise InvalidArgument(exc.render(), hint=exc.hint) from None

    def query(self, text: str, continuation: str | None = None, max_items: int | None = None) -> QueryResult:
        compiled = self.compile_query(text)
        rows = compiled.run(self.documents(compiled.source))
        try:
            page = page_rows(text, rows, continuation, max_items)
        except QueryError as exc:
            raise InvalidArgument(exc.message, hint=exc.hint) from None
        return QueryResult(copy.deepcopy(page.items), compiled.item_type, page.continuation)

    # ---- device-to-cloud messages and methods --------------------------------------------------------
    def record_message(self, device_id: str, module_id: str | None, properties: Mapping[str, str],
                       system_properties: Mapping[str, Any], body: bytes) -> StoredMessage:
        return self.record_messages([(device_id, module_id, properties, system_properties, body)])[0]

    def record_messages(self, items: Sequence[IncomingMessage]) -> list[StoredMessage]:
        """Store device-to-cloud messages in one transaction (all enqueued now), then tell the listeners."""
        ts = self.clock()
        now = _dt.datetime.fromtimestamp(ts, _dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        ms = int(ts * 1000)
        partitions = self.partition_count
        batch = []
        for device_id, module_id, properties, system_properties, body in items:
            scope = "module" if module_id else "device"  # IoT Hub's: {"scope":"device","type":"sas",…}
            sysprops = {**system_properties, "iothub-connection-device-id": device_id, "iothub-enqueuedtime": now,
                        "iothub-connection-auth-method":
                            f'{{"scope":"{scope}","type":"sas","issuer":"iothub","acceptingIpFilterRule":null}}'}
            if module_id:
                sysprops["iothub-connection-module-id"] = module_id
            batch.append(StoredMessage(0, device_id, module_id, now, sysprops, dict(properties), bytes(body),
                                       partition=partition_for(device_id, partitions), enqueued_ms=ms))
        stored = self.store.append_messages(batch)
        for listener in self.batch_listeners:
            listener(stored)
        for listener in self.message_listeners:
            for message in stored:
                listener(message)
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
