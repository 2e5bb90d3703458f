"""Which hub to talk to: ``--hub-connection-string``, then ``IOTHUB_CONNECTION_STRING`` (environment or
``.env``), then the local stand-in running from ``.state/hub`` (its ``hub.json`` records the connection
string and its CA). The code path after this is the same for Azure and the stand-in; only the connection
string and the CA differ.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from edgegen.common.sas import SasError, parse_connection_string
from edgegen.hub.errors import HubClientError
from edgegen.local.hubstandin import read_hub_info

__all__ = ["DEFAULT_STATE_DIR", "HubTarget", "resolve_hub"]

DEFAULT_STATE_DIR = Path(".state/hub")


@dataclass(frozen=True)
class HubTarget:
    connection_string: str
    host_name: str  # REST host as HostName has it: "myhub.azure-devices.net", "127.0.0.5" (443), "127.0.0.5:8443"
    ca_file: str | None  # None: the system trust store (Azure)
    source: str  # "--hub-connection-string", "IOTHUB_CONNECTION_STRING", ".env", "local stand-in"
    state_dir: Path | None = None  # the stand-in's state dir when local

    @property
    def is_local(self) -> bool:
        return self.state_dir is not None

    @property
    def device_host_name(self) -> str:
        """The HostName devices use (MQTT on 8883): the REST host without its port."""
        return self.host_name.rsplit(":", 1)[0] if ":" in self.host_name else self.host_name


def _parse(cs: str, source: str) -> dict[str, str]:
    try:
        parts = parse_connection_string(cs)
    except SasError as exc:
        raise HubClientError(f"{source}: {exc.message}", hint="expected HostName=…;SharedAccessKeyName=…;"
                             "SharedAccessKey=…") from None
    missing = [k for k in ("HostName", "SharedAccessKeyName", "SharedAccessKey") if k not in parts]
    if missing:
        hint = ("that is a device connection string; use the hub's service connection string (policy iothubowner)"
                if "DeviceId" in parts else "copy the connection string of a shared access policy")
        raise HubClientError(f"{source}: the hub connection string lacks {', '.join(missing)}", hint=hint)
    return parts


def _listening(host_name: str) -> bool:
    host, sep, port = host_name.rpartition(":")
    if not sep:
        host, port = host_name, "443"
    try:
        with socket.create_connection((host, int(port)), timeout=1.0):
            return True
    except (OSError, ValueError):
        return False


def resolve_hub(
    option: str | None = None,
    *,
    env_file: Path | None = Path(".env"),
    environ: Mapping[str, str] | None = None,
    state_dir: Path | None = None,
) -> HubTarget:
    """Find the hub to use, or raise HubClientError saying how to provide one."""
    environ = os.environ if environ is None else environ
    candidates: list[tuple[str, str]] = []
    if option:
        candidates.append((option, "--hub-connection-string"))
    if environ.get("IOTHUB_CONNECTION_STRING"):
        candidates.append((environ["IOTHUB_CONNECTION_STRING"], "IOTHUB_CONNECTION_STRING"))
    if env_file is not None and env_file.is_file():
        from dotenv import dotenv_values

        value = dotenv_values(env_file).get("IOTHUB_CONNECTION_STRING")
        if value:
            candidates.append((value, str(env_file)))
    if candidates:
        cs, source = candidates[0]
        parts = _parse(cs, source)
        ca = environ.get("REQUESTS_CA_BUNDLE") if parts["HostName"].startswith("127.") else None
        if parts["HostName"].startswith("127."):
            ca = ca or _local_ca_for(parts["HostName"], state_dir or DEFAULT_STATE_DIR)
        return HubTarget(cs, parts["HostName"], ca, source)
    state = state_dir or DEFAULT_STATE_DIR
    info = read_hub_info(state)
    if info is None or not _listening(info.host_name):
        raise HubClientError(
            "no IoT Hub to talk to: no --hub-connection-string, no IOTHUB_CONNECTION_STRING, and no local hub "
            f"running from {state}",
            hint="start the local stand-in with 'edgegen hub serve' (or pass --hub-connection-string)",
        )
    return HubTarget(info.connection_string, info.host_name, info.ca_file, "local stand-in", state)


def _local_ca_for(host_name: str, state_dir: Path) -> str | None:
    info = read_hub_info(state_dir)
    return info.ca_file if info is not None and info.host_name == host_name else None
