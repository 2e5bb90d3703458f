"""The container a module runs in, derived the way edgeAgent and iotedged derive it (pure: values in, values out).

From edgeAgent's ``CombinedEdgeletConfigProvider`` and ``CreateOrUpdateCommand`` and iotedged's docker runtime
(``edgelet-docker/src/runtime.rs``), in this order:

1. the module's ``createOptions`` object is the Docker *container create* body, taken as it is;
2. ``Image`` is the manifest's image; the name is the module's name;
3. ``Env``: the manifest's ``env`` plus the ``IOTEDGE_*`` variables, then ``createOptions.Env`` on top (iotedged's
   ``merge_env``: a variable set in createOptions wins), sorted by name;
4. ``Labels``: ``net.azure-devices.edge.owner`` and ``…original-image`` (iotedged), plus edgeAgent's
   ``…version``, ``…restartPolicy``, ``…desiredStatus`` and ``…normalizedCreateOptions`` (the createOptions as the
   user wrote them), and ``dev.edgegen.device`` so the device finds the containers it owns;
5. ``HostConfig.Binds`` gains ``<host socket folder>:/var/run/iotedge`` (the workload API, one socket per module, as
   iotedged's ``workload_listen_mnt_uri`` does; the folder rather than the socket file, so a container adopted by
   a device restarted after a crash sees the socket bound again at the same path) and ``IOTEDGE_WORKLOADURI``
   points at ``/var/run/iotedge/workload.sock``;
6. network: edgeAgent attaches modules to the ``azure-iot-edge`` bridge, where ``edgeHub`` is a container.
   Here the edge hub is this process, listening on a 127.x address only, which no bridge network can reach; so a
   module without its own ``NetworkMode``/``NetworkingConfig`` joins the host network with an ``ExtraHosts``
   entry ``edgeHub:<address>`` (a *fallback*, reported in the returned notes). Port bindings have no effect on the
   host network (the module's ports are the host's); that is reported too. A module on the host network gets
   ``EDGEGEN_LISTEN_ADDRESS=127.0.0.1`` (below the manifest's env and createOptions.Env, which may override it):
   edgegen's modules listen there instead of their images' ``0.0.0.0``, so nothing listens beyond loopback;
7. ``Privileged`` and ``CapAdd`` are dropped and ``CHOWN``/``SETUID`` added to ``CapDrop`` unless elevated
   permissions are allowed (iotedged's ``unset_privileged`` / ``drop_unsafe_privileges``).

Resource limits (``HostConfig.Memory``, ``NanoCpus``, ``CpuShares``…), binds, mounts and everything else in
createOptions reach the engine unchanged. The engine's own restart policy is never set: the agent restarts
modules itself with edgeAgent's back-off.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from edgegen.local.deployment import DesiredModule, RegistryCredential

__all__ = [
    "DEVICE_LABEL",
    "FINGERPRINT_LABEL",
    "LISTEN_ADDRESS",
    "LISTEN_ENV",
    "OWNER",
    "OWNER_LABEL",
    "WORKLOAD_DIR",
    "WORKLOAD_SOCKET",
    "ContainerFacts",
    "ContainerPlan",
    "auth_for",
    "image_domain",
    "merge_env",
    "plan_container",
]

OWNER_LABEL = "net.azure-devices.edge.owner"
OWNER = "Microsoft.Azure.Devices.Edge.Agent"
ORIGINAL_IMAGE_LABEL = "net.azure-devices.edge.original-image"
VERSION_LABEL = "net.azure-devices.edge.version"
RESTART_POLICY_LABEL = "net.azure-devices.edge.restartPolicy"
DESIRED_STATUS_LABEL = "net.azure-devices.edge.desiredStatus"
CREATE_OPTIONS_LABEL = "net.azure-devices.edge.normalizedCreateOptions"
DEVICE_LABEL = "dev.edgegen.device"
# Where a module on the host's network (process mode, or a container on the host network) may listen: edgegen's
# modules bind their servers (the inference module's /score, debugpy in the debug images) to it when it is set.
LISTEN_ENV = "EDGEGEN_LISTEN_ADDRESS"
LISTEN_ADDRESS = "127.0.0.1"
FINGERPRINT_LABEL = "dev.edgegen.fingerprint"
WORKLOAD_DIR = "/var/run/iotedge"
WORKLOAD_SOCKET = f"{WORKLOAD_DIR}/workload.sock"
DEFAULT_REGISTRY = "https://index.docker.io/v1/"  # edgeAgent's Constants.DefaultRegistryAddress
_CAPS_DROPPED = ("CHOWN", "SETUID")
# edgeAgent's RestartPolicy enum names, as its labels carry them
_POLICY_NAMES = {"never": "Never", "on-failure": "OnFailure", "on-unhealthy": "OnUnhealthy", "always": "Always"}


@dataclass(frozen=True)
class ContainerFacts:
    """What the device contributes to every container."""

    device_label: str  # identifies this device's containers (its state directory)
    gateway_address: str  # the edge hub's 127.x address: ``edgeHub`` resolves to it
    workload_dir: str  # host folder holding this module's workload API socket, ``workload.sock``
    allow_elevated: bool = False


@dataclass(frozen=True)
class ContainerPlan:
    name: str
    body: dict[str, Any]  # the Docker API's container create body
    fingerprint: str  # changes when anything in the body changes
    notes: tuple[str, ...]  # fallbacks and adjustments, for the module's status and the log


def merge_env(create_env: Sequence[str] | None, env: Mapping[str, str]) -> list[str]:
    """iotedged's ``merge_env``: ``env`` first, then createOptions' ``Env`` entries on top; sorted ``K=V``."""
    merged = dict(env)
    for item in create_env or ():
        key, _, value = str(item).partition("=")
        merged[key] = value
    return [f"{k}={merged[k]}" for k in sorted(merged)]


def image_domain(image: str) -> str | None:
    """edgeAgent's ``TryParseDomainFromImage``: the registry of ``image`` (Docker Hub's address for ``user/x``),
    None for a one-component name (a public Docker Hub image)."""
    parts = image.split("/")
    if len(parts) < 2:
        return None
    if "." in parts[0] or ":" in parts[0]:
        return parts[0]
    return DEFAULT_REGISTRY


def auth_for(image: str, credentials: Sequence[RegistryCredential]) -> dict[str, str] | None:
    """The first credential whose address is the image's registry (case-insensitive), as a Docker auth config."""
    domain = image_domain(image)
    if domain is None:
        return None
    for cred in credentials:
        if cred.address.lower() == domain.lower():
            return {"username": cred.username, "password": cred.password, "serveraddress": cred.address}
    return None


def _labels(module: DesiredModule, user_options: Mapping[str, Any], device_label: str) -> dict[str, str]:
    labels = {
        OWNER_LABEL: OWNER,
        ORIGINAL_IMAGE_LABEL: module.image,
        RESTART_POLICY_LABEL: _POLICY_NAMES.get(module.restart_policy, module.restart_policy),
        DESIRED_STATUS_LABEL: module.status,
        CREATE_OPTIONS_LABEL: json.dumps(user_options, separators=(",", ":"), sort_keys=True),
        DEVICE_LABEL: device_label,
    }
    if module.version:
        labels[VERSION_LABEL] = module.version
    return labels


def plan_container(module: DesiredModule, env: Mapping[str, str], facts: ContainerFacts) -> ContainerPlan:
    """The create body for ``module`` with ``env`` (the manifest's env plus IOTEDGE_*), and what was adjusted."""
    user = module.create_options_dict()
    body: dict[str, Any] = copy.deepcopy(user)
    notes: list[str] = []
    body["Image"] = module.image
    labels = body.get("Labels") if isinstance(body.get("Labels"), Mapping) else {}
    body["Labels"] = {**{str(k): str(v) for k, v in labels.items()}, **_labels(module, user, facts.device_label)}
    host = body.get("HostConfig")
    host = dict(host) if isinstance(host, Mapping) else {}
    host["Binds"] = [*list(host.get("Binds") or []), f"{facts.workload_dir}:{WORKLOAD_DIR}"]
    if not facts.allow_elevated:
        if host.get("Privileged") or host.get("CapAdd"):
            notes.append("Privileged and CapAdd were dropped (elevated permissions are not allowed, as on iotedged)")
            host["Privileged"] = False
            host.pop("CapAdd", None)
        drops = [c for c in _CAPS_DROPPED]
        host["CapDrop"] = [*drops, *[c for c in host.get("CapDrop") or [] if c not in drops]]
    networking = body.get("NetworkingConfig")
    has_endpoints = isinstance(networking, Mapping) and bool(networking.get("EndpointsConfig"))
    listen: dict[str, str] = {}
    if not host.get("NetworkMode") and not has_endpoints:
        host["NetworkMode"] = "host"
        hosts = [h for h in host.get("ExtraHosts") or [] if not str(h).startswith("edgeHub:")]
        host["ExtraHosts"] = [*hosts, f"edgeHub:{facts.gateway_address}"]
        notes.append(f"host network with edgeHub -> {facts.gateway_address} (fallback for edgeAgent's "
                     "azure-iot-edge bridge: the local edge hub listens on loopback only)")
        if host.get("PortBindings"):
            ports = ", ".join(sorted(host["PortBindings"]))
            notes.append(f"PortBindings ({ports}) have no effect on the host network: the module's own ports "
                         f"are the host's (edgegen's modules listen on {LISTEN_ADDRESS} there: {LISTEN_ENV})")
    if host.get("NetworkMode") == "host":  # the host's interfaces: modules that listen keep to loopback
        listen = {LISTEN_ENV: LISTEN_ADDRESS}
    body["Env"] = merge_env(body.get("Env"), {**listen, **env, "IOTEDGE_WORKLOADURI": f"unix://{WORKLOAD_SOCKET}"})
    body["HostConfig"] = host
    body.pop("name", None)
    body.pop("Name", None)
    # The engine's restart policy stays off: the agent restarts the module itself (edgeAgent's back-off).
    host.pop("RestartPolicy", None)
    fingerprint = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]
    body["Labels"][FINGERPRINT_LABEL] = fingerprint
    return ContainerPlan(module.name, body, fingerprint, tuple(notes))
