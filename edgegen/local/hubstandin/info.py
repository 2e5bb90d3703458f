"""How clients find a running stand-in: ``hub.json`` in its state directory (the public contract).

The stand-in writes it (atomically, 0600) when it listens and removes it when it stops; ``edgegen.hub.connection``,
``edgegen hub device run`` and ``edgegen up`` read it to get the connection string, the addresses and the CA.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["HubInfo", "read_hub_info"]


@dataclass(frozen=True)
class HubInfo:
    """What ``hub.json`` says about a running stand-in."""

    host_name: str  # REST host name, "127.0.0.1:8443"
    address: str
    port: int
    connection_string: str
    ca_file: str
    mqtt_port: int | None
    pid: int
    amqp_port: int | None = None
    event_hub_connection_string: str | None = None
    device_capacity: int | None = None  # devices that may be connected at once (the open-files limit decides)

    @property
    def device_host_name(self) -> str:
        """The HostName devices put in their connection strings (MQTT on 8883 of the same address)."""
        return self.address

    def to_dict(self) -> dict[str, Any]:
        return {"hostName": self.host_name, "address": self.address, "port": self.port,
                "connectionString": self.connection_string, "caFile": self.ca_file,
                "mqttPort": self.mqtt_port, "pid": self.pid, "amqpPort": self.amqp_port,
                "eventHubConnectionString": self.event_hub_connection_string,
                "deviceCapacity": self.device_capacity}


def read_hub_info(state_dir: Path) -> HubInfo | None:
    path = Path(state_dir) / "hub.json"
    try:
        d = json.loads(path.read_text())
        return HubInfo(d["hostName"], d["address"], int(d["port"]), d["connectionString"], d["caFile"],
                       d.get("mqttPort"), int(d.get("pid") or 0), d.get("amqpPort"),
                       d.get("eventHubConnectionString"), d.get("deviceCapacity"))
    except (OSError, ValueError, KeyError):
        return None
