"""One local edge device: certificates, the edge hub (MQTT gateway + router + twins), the workload API, the agent.

``async with Device(DeviceConfig(...)) as device:`` starts everything and applies the deployment; leaving the
block (or ``stop()``) stops modules first, then the edge hub, and closes the stores. State lives under one
directory (see docs/local-device.md):

    <state>/device.json        control API port, pid, address, ids (present while running)
    <state>/identities.json    module keys and generation ids (0600)
    <state>/certs/             local CA and the edge hub's server certificate (keys 0600)
    <state>/store.sqlite       store-and-forward queues        <state>/sessions.sqlite  MQTT persistent sessions
    <state>/upstream.sqlite    $upstream messages (retention: DeviceConfig.upstream_retention)
    <state>/twins.json         module twins
    <state>/logs/<module>.log  module output (engine mode: earlier containers' logs)
    <state>/run/<module>.json  process mode: pid, start time and fingerprint of each running module (0600), so
                               a device restarted after a crash adopts the modules that outlived it
    <state>/venvs/             per-module venvs (process mode)
    <state>/workload/<m>.sock  the workload API socket bound into module m's container (engine mode)

``DeviceConfig.engine`` picks where modules run: ``process`` (``main.py`` from the solution's module folders),
``docker`` (the manifest's images on a Docker-API engine, as edgeAgent runs them) or ``auto`` (docker when an
engine answers, else process); ``device.engine_choice.reason`` says which and why.

Disk stays bounded: every ``INTERVAL`` (60 s) the ``$upstream`` log is pruned to its retention (age and size, as
the hub stand-in's message store) and the pages the three SQLite files no longer use (a drained backlog,
delivered session messages) are given back; ``status()["stores"]`` shows their sizes.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import ipaddress
import itertools
import json
import logging
import os
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgegen.common.certs import ensure_ca, ensure_server_cert
from edgegen.common.loopback import first_free_address, loopback_candidate
from edgegen.common.private import private_dir, private_tree, write_private
from edgegen.common.retention import INTERVAL, Retention
from edgegen.common.sqlitespace import file_size
from edgegen.errors import Location
from edgegen.local.agent import Agent, BackoffPolicy
from edgegen.local.agentmethods import AGENT_MODULE, handle_agent_method
from edgegen.local.containerspec import LISTEN_ADDRESS, LISTEN_ENV
from edgegen.local.deployment import Deployment, DeploymentSource, DesiredModule, ManifestFile
from edgegen.local.edgehub import EdgeHubHandler
from edgegen.local.edgehubhttp import HTTPS_PORT, EdgeHubHttp
from edgegen.local.errors import DeviceError
from edgegen.local.identities import IdentityBook
from edgegen.local.modulecode import ModuleResolver, VenvCache, model_layout
from edgegen.local.mqtt.auth import SasAuthenticator
from edgegen.local.mqtt.errors import GatewayUnavailable
from edgegen.local.mqtt.gateway import MqttGateway
from edgegen.local.mqtt.store import SqliteSessionStore
from edgegen.local.mqtt.topics import Identity
from edgegen.local.processes import ProcessRuntime
from edgegen.local.router import GroupCommit, Router
from edgegen.local.store import SqliteStore
from edgegen.local.twins import TwinFile
from edgegen.local.upstream import LocalUpstream, UpstreamSink
from edgegen.local.workload import WorkloadApi

__all__ = ["API_VERSION", "Device", "DeviceConfig", "pick_address"]

log = logging.getLogger(__name__)
API_VERSION = "2019-01-30"
MQTT_PORT = 8883
WORKLOAD_PORT = 15581  # iotedged's workload API port when it listens on TCP


def _bindable_https(c: DeviceConfig) -> tuple[int, ...]:
    """The HTTPS port, when this process may bind it (below 1024 that takes root): it counts in picking an address."""
    return (c.https_port,) if c.https_port and (c.https_port >= 1024 or os.geteuid() == 0) else ()


class _AddressInUse(Exception):
    """The edge hub's address:port was taken (carries the DeviceError to raise when no retry is allowed)."""

    def __init__(self, error: DeviceError) -> None:
        super().__init__(error.message)
        self.error = error


def pick_address(port: int = MQTT_PORT, *more_ports: int, skip: tuple[str, ...] = (), prefer: str | None = None) -> str:
    """A 127.x.y.z where ``port`` and ``more_ports`` are free (``prefer`` first, then 127.0.0.1…), other than
    ``skip``."""
    ordered = itertools.chain([prefer] if prefer else [], ("127.0.0.1" if n == 0 else loopback_candidate(n)
                                                           for n in range(500)))
    candidates = (a for a in ordered if a not in skip)
    addr = first_free_address(candidates, port, *more_ports)
    if addr is None:
        ports = "/".join(str(p) for p in (port, *more_ports))
        raise DeviceError(f"no free 127.x address for port {ports}", hint="pass --address 127.x.y.z")
    return addr


def _last_address(state: Path) -> str | None:
    """The loopback address a device with this state directory listened on when it last ran (``device.json`` is
    left behind when its process was killed), or None."""
    try:
        address = json.loads((state / "device.json").read_text())["address"]
        return address if ipaddress.ip_address(address).is_loopback else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


@dataclass
class DeviceConfig:
    state_dir: Path
    manifest: Path | None = None  # or give ``source``
    source: DeploymentSource | None = None
    solution_dir: Path | None = None  # where modules/<folder> are; default: the manifest's solution
    address: str | None = None  # 127.x for the edge hub's 8883; None picks a free one
    port: int = MQTT_PORT
    https_port: int | None = HTTPS_PORT  # edgeHub's HTTPS endpoint (module → module methods); None: not served
    device_id: str = "edgegen-device"
    hub_hostname: str = "edgegen-hub.local"
    share_site_packages: bool = False
    venv_dir: Path | None = None
    backoff: BackoffPolicy = field(default_factory=BackoffPolicy)
    upstream: UpstreamSink | None = None  # default: LocalUpstream under the state dir
    control_api: bool = True
    # True: a message handed to a module's MQTT session is committed before the publisher's PUBACK (survives a
    # crash of this process). False: the gateway's grouped commit (every 20 ms) — about twice the throughput.
    durable_ack: bool = True
    watch_interval: float = 1.0
    engine: str = "process"  # "process", "docker" or "auto"
    engine_env: dict[str, str] | None = None  # where to find the engine (DOCKER_HOST…); default: os.environ
    allow_elevated: bool = False  # engine mode: keep Privileged/CapAdd (iotedged's allow_elevated_docker_permissions)
    upstream_retention: Retention = field(default_factory=Retention)  # the local $upstream log's bound


def _stage_models(solution: Path, models_dir: Path, module: DesiredModule) -> dict[str, str]:
    """Process mode: the models ``module`` pins, laid out under ``<models_dir>/<module>`` (its variables)."""
    return model_layout(module.name, module.env, solution, models_dir / module.name)


def _solution_of(manifest: Path) -> Path:
    """The solution folder of a manifest: the nearest parent (or itself) holding a ``modules`` folder."""
    for folder in [manifest.resolve().parent, *manifest.resolve().parents]:
        if (folder / "modules").is_dir():
            return folder
    return Path.cwd()


class Device:
    def __init__(self, config: DeviceConfig) -> None:
        c = config
        if c.source is None and c.manifest is None:
            raise DeviceError("a device needs a manifest", hint="edgegen device run --manifest FILE")
        self.config = c
        self.state = Path(c.state_dir).resolve()
        # an address picked for this state directory before is kept when free: modules that outlived a crash of
        # the device process reconnect to it (their IOTEDGE_GATEWAYHOSTNAME does not change)
        self.address = c.address or pick_address(c.port, *_bindable_https(c), prefer=_last_address(self.state))
        try:
            if not ipaddress.ip_address(self.address).is_loopback:
                raise ValueError
        except ValueError:
            raise DeviceError(f"address {self.address!r} is not a 127.x loopback address",
                              hint="the local device only listens on loopback, e.g. --address 127.0.0.5") from None
        self.source: DeploymentSource = c.source or ManifestFile(Path(c.manifest), c.watch_interval)  # type: ignore[arg-type]
        solution = c.solution_dir or (_solution_of(Path(c.manifest)) if c.manifest else Path.cwd())
        # keys, twins (deployment secrets), messages, the control token: this user only (venvs and models are code;
        # the workload sockets' folder too: adopted containers' users need their socket folders traversable)
        private_tree(self.state, skip=("venvs", "models", "workload"))
        self.identities = IdentityBook(self.state / "identities.json")
        self.store = SqliteStore(self.state / "store.sqlite")
        self.sessions = SqliteSessionStore(self.state / "sessions.sqlite")
        self.local_upstream = LocalUpstream(self.state / "upstream.sqlite") if c.upstream is None else None
        upstream: UpstreamSink = c.upstream or self.local_upstream  # type: ignore[assignment]
        commit = GroupCommit(self.sessions.flush) if c.durable_ack else None
        self.router = Router(c.device_id, self.store, upstream, commit=commit)
        self.twin_file = TwinFile(self.state / "twins.json")
        self.hub = EdgeHubHandler(c.device_id, self.router, self.twin_file.load(), self.twin_file)
        self.gateway: MqttGateway | None = None
        self.https: EdgeHubHttp | None = None
        from edgegen.local.containers import ContainerRuntime, choose_engine, short_socket_dir

        self.engine_choice = choose_engine(c.engine, c.engine_env)
        runtime: Any
        # engine mode: the models a module pins are in its image (checked by `edgegen build`); process mode: they
        # are laid out from the solution's registry as in the image, before anything stops
        stage: Callable[[DesiredModule], dict[str, str]] | None = None
        if self.engine_choice.engine is not None:
            self.workload = WorkloadApi(self.identities.get, self._trust_bundle,
                                        socket_dir=short_socket_dir(self.state / "workload"))
            runtime = ContainerRuntime(
                self.engine_choice.engine, self.state, self.state / "logs", self.workload.module_socket,
                self.address, credentials=lambda: self.deployment.registry_credentials if self.deployment else (),
                allow_elevated=c.allow_elevated)
        else:
            # a fixed address and port (iotedged's workload port) so modules that outlive a crash of this process
            # still reach it after the restart (their IOTEDGE_WORKLOADURI does not change)
            self.workload = WorkloadApi(self.identities.get, self._trust_bundle, host=self.address,
                                        port=WORKLOAD_PORT, any_port_if_taken=True)
            venvs = VenvCache(c.venv_dir or self.state / "venvs", system_site_packages=c.share_site_packages)
            runtime = ProcessRuntime(ModuleResolver(solution), venvs, self.state / "logs",
                                     run_dir=self.state / "run")
            stage = functools.partial(_stage_models, solution, self.state / "models")
        self.runtime = runtime
        self.agent = Agent(runtime, self._module_env, policy=c.backoff, on_change=self._agent_changed,
                           on_process_start=self.router.process_restarted,
                           on_adopted=self.router.inputs_subscribed, stage=stage)
        self.deployment: Deployment | None = None
        self.control: Any = None
        self._tasks: list[asyncio.Task[None]] = []
        self._ssl: ssl.SSLContext | None = None
        self.ca_file = self.state / "certs" / "ca.pem"
        self._closed = False

    # ------------------------------------------------------------------ lifetime

    async def __aenter__(self) -> Device:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        ca = ensure_ca(private_dir(self.state / "certs"))
        self._server_tls(ca)
        deployment = await self.source.current()
        # An address picked here (not given) was free when picked; another process may have taken its port since
        # (the wait for a first deployment can be long): then pick another one instead of failing.
        for attempt in range(5):
            try:
                await self.start_edge_hub()
                break
            except _AddressInUse as exc:
                if self.config.address is not None or attempt == 4:
                    raise exc.error from None
                taken = self.address
                self.address = pick_address(self.config.port, *_bindable_https(self.config), skip=(taken,))
                log.warning("%s:%s was taken meanwhile; the edge hub listens on %s instead", taken,
                            self.config.port, self.address)
                self._server_tls(ca)
        await self._start_https()
        await self.workload.start()
        if hasattr(self.runtime, "find_leftovers"):  # adopted, replaced or removed by the first apply
            self.runtime.gateway_address = self.address  # the address may have moved while starting the edge hub
            left = await self.runtime.find_leftovers()
            if left:
                log.warning("found containers left by an earlier run of this device: %s", ", ".join(left))
        await self.router.start()
        if self.config.control_api:
            from edgegen.local.control import TOKEN_FILE, ControlApi

            self.control = ControlApi(self, token_path=self.state / TOKEN_FILE)
            await self.control.start()
        self._write_device_file()
        await self.apply(deployment)
        if hasattr(self.runtime, "stop_strays"):  # modules an earlier run left that this deployment does not run
            stray = await self.runtime.stop_strays({n: self.agent.pid(n) for n in self.agent.status()})
            if stray:
                log.warning("stopped modules an earlier run left and this deployment does not run: %s",
                            ", ".join(stray))
        self._tasks.append(asyncio.create_task(self._watch(), name="deployment-watch"))
        self._tasks.append(asyncio.create_task(self._keep_disk_bounded(), name="disk"))

    def bound_disk(self) -> int:
        """Apply the ``$upstream`` log's retention and give free pages back; return the messages removed."""
        removed = 0
        if self.local_upstream is not None:
            retention = self.config.upstream_retention
            removed = self.local_upstream.prune(retention.cutoff_ms(), retention.max_bytes)
            if removed:
                log.info("$upstream retention (%s): removed %d messages", retention.describe(), removed)
            self.local_upstream.give_back()
        self.store.give_back()
        self.sessions.give_back()
        return removed

    async def _keep_disk_bounded(self) -> None:
        while True:
            try:
                self.bound_disk()
            except Exception:
                log.exception("bounding the stores' disk use failed")
            await asyncio.sleep(INTERVAL)

    def _server_tls(self, ca: Any) -> None:
        server = ensure_server_cert(ca, self.state / "certs", "edgehub", ["localhost", self.address])
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(server.cert_path, server.key_path)
        self._ssl = ctx

    async def start_edge_hub(self) -> None:
        auth = SasAuthenticator(self._keys, host=self.config.hub_hostname, allow_modules=True)
        gateway = MqttGateway(auth, self.hub, self.sessions)
        try:
            await gateway.start(self.address, self.config.port, self._ssl)
        except OSError as exc:
            error = DeviceError(f"cannot listen on {self.address}:{self.config.port}: {exc.strerror}",
                                hint="another edge hub or broker uses it; pick another --address 127.x.y.z")
            if exc.errno == errno.EADDRINUSE:
                raise _AddressInUse(error) from None
            raise error from None
        self.gateway = gateway
        self.router.attach(gateway)

    async def _start_https(self) -> None:
        if self.config.https_port is None:
            return
        auth = SasAuthenticator(self._keys, host=self.config.hub_hostname, allow_modules=True)
        https = EdgeHubHttp(self.config.device_id, self.config.hub_hostname, auth, self._gateway_method,
                            host=self.address, port=self.config.https_port, ssl_context=self._ssl)
        try:
            await https.start()
        except OSError as exc:  # the device still runs; only module → module methods are missing
            log.warning("module-to-module direct methods are off: cannot listen on %s:%s (%s); the SDKs call "
                        "port 443 of the gateway address, which needs root or CAP_NET_BIND_SERVICE",
                        self.address, self.config.https_port, exc.strerror)
            return
        self.https = https

    async def _gateway_method(self, target: Identity, name: str, payload: Any, timeout: float,
                              connect_timeout: float) -> tuple[int, Any]:
        if self.gateway is None:
            raise GatewayUnavailable("the edge hub is restarting")
        return await self.gateway.invoke_method(target, name, payload, timeout, connect_timeout)

    async def invoke_module_method(self, module: str, name: str, payload: Any, timeout: float = 30.0,
                                   connect_timeout: float = 0.0) -> tuple[int, Any]:
        """A direct method on a module of this device (``$edgeAgent``: answered by the agent, as edgeAgent does);
        raises NotConnected (404) or MethodTimeoutError (504) like IoT Hub's method call."""
        if module == AGENT_MODULE:
            return await handle_agent_method(self, name, payload)
        return await self._gateway_method(Identity(self.config.device_id, module), name, payload, timeout,
                                          connect_timeout)

    def module_names(self) -> set[str]:
        """The modules edgeAgent would find in its environment: the deployment's, edgeAgent and edgeHub."""
        return {*self.agent.status(), "edgeAgent", "edgeHub"}

    async def restart_module(self, name: str) -> None:
        """Stop and start one module (``edgeHub``: the local edge hub); DeviceError if it cannot be."""
        if name == "edgeHub":
            await self.restart_edge_hub()
        elif name == "edgeAgent":
            raise DeviceError("edgeAgent cannot restart itself on an edgegen device",
                              hint="stop and start 'edgegen device run' instead")
        else:
            await self.agent.stop_module(name)
            await self.agent.start_module(name)

    async def stop_edge_hub(self) -> None:
        if self.gateway is not None:
            await self.gateway.stop()
            self.gateway = None
            self.hub.connected.clear()

    async def restart_edge_hub(self, down_secs: float = 0.0) -> None:
        """Stop the MQTT side and start it again on the same address; sessions and the store persist."""
        await self.stop_edge_hub()
        await asyncio.sleep(down_secs)
        await self.start_edge_hub()

    async def stop(self) -> None:
        if self._closed:
            return
        self._closed = True
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._tasks.clear()
        await self.agent.stop_all()
        await self.router.stop()
        if self.https is not None:
            await self.https.stop()
            self.https = None
        await self.stop_edge_hub()
        await self.workload.stop()
        if self.workload.socket_dir is not None and not self.workload.socket_dir.is_relative_to(self.state):
            with contextlib.suppress(OSError):  # the temp folder of a too long state path (empty by now)
                self.workload.socket_dir.rmdir()
        if self.control is not None:
            await self.control.stop()
            self.control = None
        self.hub.save_now()
        with contextlib.suppress(FileNotFoundError):
            (self.state / "device.json").unlink()
        self.store.close()
        self.sessions.close()
        if self.local_upstream is not None:
            self.local_upstream.close()

    # ------------------------------------------------------------------ deployments

    async def apply(self, deployment: Deployment) -> list[str]:
        """Routes, twins, then modules; returns the modules (re)started."""
        self.identities.ensure(list(deployment.modules))
        self.router.set_routes(deployment.routes, deployment.hub_schema_version, deployment.store_ttl_secs)
        self.hub.apply_twins(deployment.twins, self.gateway)
        self.deployment = deployment
        started = await self.agent.apply(deployment.modules, getattr(self.source, "path", "manifest").__str__())
        self._revoke_removed(list(deployment.modules))
        self._agent_changed()
        return started

    def _revoke_removed(self, modules: list[str]) -> None:
        """Modules that left the deployment (stopped by now) lose their identity: their key no longer signs, a
        connection still open is closed and its session dropped."""
        for module in self.identities.retain(modules):
            log.info("module %s left the deployment: its identity is removed", module)
            if self.gateway is not None:
                self.gateway.revoke(Identity(self.config.device_id, module), forget=True,
                                    reason="module removed from the deployment")

    async def _watch(self) -> None:
        async for deployment in self.source.changes():
            try:
                started = await self.apply(deployment)
                log.info("new deployment applied; (re)started %s", ", ".join(started) or "nothing")
            except DeviceError as exc:
                log.error("new deployment not applied: %s", exc.render())

    # ------------------------------------------------------------------ helpers

    def _keys(self, identity: Identity) -> str | None:
        if identity.device_id != self.config.device_id or not identity.module_id:
            return None
        known = self.identities.get(identity.module_id)
        return known.key if known else None

    def _trust_bundle(self) -> str:
        return self.ca_file.read_text()

    def _module_env(self, module: DesiredModule) -> dict[str, str]:
        key = self.identities.get(module.name)
        assert key is not None
        return {
            "IOTEDGE_IOTHUBHOSTNAME": self.config.hub_hostname,
            "IOTEDGE_DEVICEID": self.config.device_id,
            "IOTEDGE_MODULEID": module.name,
            "IOTEDGE_GATEWAYHOSTNAME": self.address,
            "IOTEDGE_MODULEGENERATIONID": key.generation_id,
            "IOTEDGE_WORKLOADURI": self.workload.uri,
            "IOTEDGE_APIVERSION": API_VERSION,
            "IOTEDGE_AUTHSCHEME": "sasToken",
            # processes share the host's network: edgegen's modules listen on loopback only (containers get it
            # from containerspec when they are on the host network)
            **({LISTEN_ENV: LISTEN_ADDRESS} if self.engine_choice.kind == "process" else {}),
        }

    def _agent_changed(self) -> None:
        self.hub.report_system("$edgeAgent", {"modules": self.agent.status()})

    def _write_device_file(self) -> None:
        data = {
            "pid": os.getpid(),
            "deviceId": self.config.device_id,
            "hubHostName": self.config.hub_hostname,
            "address": self.address,
            "port": self.config.port,
            "controlPort": self.control.port if self.control else None,
            "workloadUri": self.workload.uri,
            "caFile": str(self.ca_file),
            "engine": self.engine_choice.kind,
        }
        write_private(self.state / "device.json", json.dumps(data, indent=1), fsync=False)

    def status(self) -> dict[str, Any]:
        return {
            "deviceId": self.config.device_id,
            "address": self.address,
            "engine": self.engine_choice.kind,
            "edgeHub": "running" if self.gateway is not None else "stopped",
            "modules": self.agent.status(),
            "connected": sorted(self.hub.connected),
            "endpoints": self.router.backlog(),
            "router": self.router.counters.to_dict(),
            "stores": self.store_sizes(),
        }

    def store_sizes(self) -> dict[str, Any]:
        """Bytes on disk of each SQLite file; the ``$upstream`` log's messages and retention too."""
        sizes: dict[str, Any] = {"store.sqlite": file_size(self.store.path),
                                 "sessions.sqlite": file_size(self.sessions.path)}
        if self.local_upstream is not None:
            retention = self.config.upstream_retention
            sizes["upstream.sqlite"] = {**self.local_upstream.sizes(), "retentionDays": retention.days,
                                        "retentionBytes": retention.max_bytes}
        return sizes

    def module_cred(self, module: str) -> dict[str, str]:
        return module_credentials(self.state, module)


def module_credentials(state_dir: Path, module: str) -> dict[str, str]:
    """``EdgeHubConnectionString`` and ``EdgeModuleCACertificateFile`` for running ``module`` by hand."""
    state = Path(state_dir)
    info_path = state / "device.json"
    if not info_path.exists():
        raise DeviceError("the device is not running", location=Location(file=str(info_path)),
                          hint="start it with 'edgegen device run --manifest FILE' (same --state-dir)")
    info = json.loads(info_path.read_text())
    key = IdentityBook(state / "identities.json").get(module)
    if key is None:
        raise DeviceError(f"module {module!r} has no identity on this device",
                          location=Location(file=str(state / "identities.json")),
                          hint="only modules of the running deployment have identities")
    cs = (f"HostName={info['hubHostName']};DeviceId={info['deviceId']};ModuleId={module};"
          f"SharedAccessKey={key.key};GatewayHostName={info['address']}")
    return {"EdgeHubConnectionString": cs, "EdgeModuleCACertificateFile": info["caFile"]}
