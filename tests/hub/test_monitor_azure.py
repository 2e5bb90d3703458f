"""Monitoring Azure needs the optional azure-eventhub extra and the Event Hub-compatible endpoint: say so."""

from __future__ import annotations

import importlib.util

import pytest

from edgegen.hub.connection import HubTarget, resolve_hub
from edgegen.hub.errors import HubClientError
from edgegen.hub.monitor import MonitorFilter, run_monitor

AZURE = HubTarget("HostName=myhub.azure-devices.net;SharedAccessKeyName=service;SharedAccessKey=QUJD",
                  "myhub.azure-devices.net", None, "--hub-connection-string")


def test_monitor_azure_says_what_is_missing(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("IOTHUB_EVENTHUB_CONNECTION_STRING", raising=False)
    with pytest.raises(HubClientError) as exc:
        run_monitor(AZURE, MonitorFilter(), timeout=1, count=1, from_start=False, on_event=print)
    if importlib.util.find_spec("azure.eventhub") is None:
        assert "azure-eventhub" in exc.value.message and "edgegen[eventhub]" in (exc.value.hint or "")
    else:
        assert "Event Hub-compatible endpoint" in exc.value.message


def test_connection_resolution_order(tmp_path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("IOTHUB_CONNECTION_STRING=HostName=b.azure-devices.net;SharedAccessKeyName=s;"
                        "SharedAccessKey=QUJD\n")
    option = "HostName=a.azure-devices.net;SharedAccessKeyName=s;SharedAccessKey=QUJD"
    assert resolve_hub(option, env_file=env_file, environ={}).host_name == "a.azure-devices.net"
    assert resolve_hub(None, env_file=env_file, environ={}).source == str(env_file)
    environ = {"IOTHUB_CONNECTION_STRING": option}
    assert resolve_hub(None, env_file=env_file, environ=environ).source == "IOTHUB_CONNECTION_STRING"
    with pytest.raises(HubClientError) as exc:
        resolve_hub("HostName=x;DeviceId=d;SharedAccessKey=QUJD", env_file=None, environ={})
    assert "device connection string" in (exc.value.hint or "")
    with pytest.raises(HubClientError) as exc:
        resolve_hub(None, env_file=None, environ={}, state_dir=tmp_path / "none")
    assert "edgegen hub serve" in (exc.value.hint or "")
