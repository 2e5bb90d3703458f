"""The stand-in's REST API driven by the real azure-iot-hub SDK (every call edgegen uses), over HTTPS."""

from __future__ import annotations

import time

import pytest
import requests
from azure.iot.hub import IoTHubConfigurationManager, IoTHubRegistryManager
from azure.iot.hub.models import CloudToDeviceMethod, Configuration, ConfigurationContent, Twin
from msrest.exceptions import HttpOperationError

from edgegen.common.sas import generate_key, generate_sas_token

pytestmark = pytest.mark.integration

BASE = {
    "$edgeAgent": {"properties.desired": {"schemaVersion": "1.1", "modules": {
        "sensor": {"type": "docker", "status": "running", "settings": {"image": "sensor:1"}}}}},
    "$edgeHub": {"properties.desired": {"schemaVersion": "1.1", "routes": {"up": "FROM /* INTO $upstream"}}},
    "sensor": {"properties.desired": {"interval": 1}},
}


def status_of(exc: HttpOperationError) -> int:
    return int(exc.response.status_code)


@pytest.fixture
def managers(hub):
    cs = hub.info.connection_string
    return IoTHubRegistryManager.from_connection_string(cs), IoTHubConfigurationManager.from_connection_string(cs)


def test_registry_devices_modules_and_twins(hub, managers) -> None:
    rm, _ = managers
    dev = rm.create_device_with_sas("edge1", None, None, "enabled", iot_edge=True)
    assert dev.capabilities.iot_edge is True and dev.authentication.symmetric_key.primary_key
    with pytest.raises(HttpOperationError) as exc:
        rm.create_device_with_sas("edge1", None, None, "enabled", iot_edge=True)
    assert status_of(exc.value) == 409
    assert [d.device_id for d in rm.get_devices()] == ["edge1"]
    assert sorted(m.module_id for m in rm.get_modules("edge1")) == ["$edgeAgent", "$edgeHub"]
    twin = rm.update_twin("edge1", Twin(tags={"environment": "prod", "floor": 3}), "*")
    assert twin.tags == {"environment": "prod", "floor": 3}
    with pytest.raises(HttpOperationError) as exc:
        rm.update_twin("edge1", Twin(tags={"x": 1}), "AAAAAAAAAAA=")
    assert status_of(exc.value) == 412
    twin = rm.update_twin("edge1", Twin(tags={"floor": None}), twin.etag)
    assert twin.tags == {"environment": "prod"}
    updated = rm.update_device_with_sas("edge1", dev.etag, "newkeyAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
                                        dev.authentication.symmetric_key.secondary_key, "disabled")
    assert updated.status == "disabled" and updated.etag != dev.etag
    with pytest.raises(HttpOperationError) as exc:
        rm.get_device("nope")
    assert status_of(exc.value) == 404
    rm.delete_device("edge1")
    assert rm.get_devices() == []


def test_apply_configuration_sets_module_twins(hub, managers) -> None:
    rm, cm = managers
    rm.create_device_with_sas("edge1", None, None, "enabled", iot_edge=True)
    assert cm.apply_configuration_on_edge_device("edge1", ConfigurationContent(modules_content=BASE)) is None
    agent = rm.get_module_twin("edge1", "$edgeAgent")
    assert agent.properties.desired["modules"]["sensor"]["settings"]["image"] == "sensor:1"
    assert rm.get_module_twin("edge1", "$edgeHub").properties.desired["routes"] == {"up": "FROM /* INTO $upstream"}
    # the hub does not make module identities: the device side (edgeAgent) does, and the new twin gets its
    # desired properties from the deployment at once
    assert {m.module_id for m in rm.get_modules("edge1")} == {"$edgeAgent", "$edgeHub"}
    rm.create_module_with_sas("edge1", "sensor", "iotEdge", None, None)
    assert rm.get_module_twin("edge1", "sensor").properties.desired["interval"] == 1
    version = agent.properties.desired["$version"]
    changed = {**BASE, "sensor": {"properties.desired": {"interval": 5}}}
    cm.apply_configuration_on_edge_device("edge1", ConfigurationContent(modules_content=changed))
    assert rm.get_module_twin("edge1", "$edgeAgent").properties.desired["$version"] == version  # unchanged
    assert rm.get_module_twin("edge1", "sensor").properties.desired["interval"] == 5
    rm.create_device_with_sas("leaf", None, None, "enabled", iot_edge=False)
    with pytest.raises(HttpOperationError) as exc:
        cm.apply_configuration_on_edge_device("leaf", ConfigurationContent(modules_content=BASE))
    assert status_of(exc.value) == 400


def _config(cid: str, content: dict, condition: str, priority: int, **kw) -> Configuration:
    return Configuration(id=cid, content=ConfigurationContent(modules_content=content), target_condition=condition,
                         priority=priority, **kw)


def test_configurations_crud_priority_layers_and_metrics(hub, managers) -> None:
    rm, cm = managers
    for name, env in (("p1", "prod"), ("p2", "prod"), ("d1", "dev")):
        rm.create_device_with_sas(name, None, None, "enabled", iot_edge=True)
        rm.create_module_with_sas(name, "sensor", "iotEdge", None, None)  # as edgeAgent does
        rm.update_twin(name, Twin(tags={"environment": env}), "*")
    low = _config("base-low", BASE, "tags.environment='prod'", 5, labels={"team": "a"},
                  metrics={"queries": {"prodDevices": "SELECT deviceId FROM devices WHERE tags.environment='prod'"}})
    created = cm.create_configuration(low)
    assert created.etag and created.system_metrics.results["targetedCount"] == 2
    assert created.metrics.results == {"prodDevices": 2}
    high_content = {**BASE, "sensor": {"properties.desired": {"interval": 9}}}
    cm.create_configuration(_config("base-high", high_content, "tags.environment IN ['prod', 'dev']", 10))
    assert rm.get_module_twin("p1", "sensor").properties.desired["interval"] == 9  # highest priority wins
    assert rm.get_module_twin("d1", "sensor").properties.desired["interval"] == 9
    layer = {"$edgeAgent": {"properties.desired.modules.extra": {"type": "docker", "settings": {"image": "x:1"}}},
             "sensor": {"properties.desired.threshold": 42}}
    cm.create_configuration(_config("layer", layer, "tags.environment='prod'", 1))
    p1_agent = rm.get_module_twin("p1", "$edgeAgent").properties.desired
    assert set(p1_agent["modules"]) == {"sensor", "extra"}
    assert rm.get_module_twin("p1", "sensor").properties.desired["threshold"] == 42
    assert set(rm.get_module_twin("d1", "$edgeAgent").properties.desired["modules"]) == {"sensor"}
    view = cm.get_configuration("base-low")
    assert view.system_metrics.results["targetedCount"] == 2 and view.system_metrics.results["appliedCount"] == 0
    # update: priority and condition may change, content may not
    view.priority = 20
    updated = cm.update_configuration(view, view.etag)
    assert updated.priority == 20 and updated.etag != view.etag
    assert rm.get_module_twin("p1", "sensor").properties.desired["interval"] == 1  # base-low now wins on prod
    with pytest.raises(HttpOperationError) as exc:
        cm.update_configuration(view, view.etag)  # stale etag
    assert status_of(exc.value) == 412
    updated.content = ConfigurationContent(modules_content=high_content)
    with pytest.raises(HttpOperationError) as exc:
        cm.update_configuration(updated, updated.etag)
    assert status_of(exc.value) == 400
    with pytest.raises(HttpOperationError) as exc:
        cm.create_configuration(low)
    assert status_of(exc.value) == 409
    assert sorted(c.id for c in cm.get_configurations()) == ["base-high", "base-low", "layer"]
    # a tag change retargets: p2 leaves prod, so base-high applies and the layer goes away
    rm.update_twin("p2", Twin(tags={"environment": "dev"}), "*")
    assert set(rm.get_module_twin("p2", "$edgeAgent").properties.desired["modules"]) == {"sensor"}
    assert rm.get_module_twin("p2", "sensor").properties.desired["interval"] == 9
    cm.delete_configuration("base-low")
    assert rm.get_module_twin("p1", "sensor").properties.desired["interval"] == 9
    with pytest.raises(HttpOperationError) as exc:
        cm.get_configuration("base-low")
    assert status_of(exc.value) == 404
    with pytest.raises(HttpOperationError) as exc:
        cm.create_configuration(_config("bad", BASE, "tags.environment = = 'x'", 1))
    assert status_of(exc.value) == 400


def test_module_method_needs_a_connected_module(hub, managers) -> None:
    rm, cm = managers
    rm.create_device_with_sas("edge1", None, None, "enabled", iot_edge=True)
    cm.apply_configuration_on_edge_device("edge1", ConfigurationContent(modules_content=BASE))
    rm.create_module_with_sas("edge1", "sensor", "iotEdge", None, None)
    with pytest.raises(HttpOperationError) as exc:
        rm.invoke_device_module_method("edge1", "sensor", CloudToDeviceMethod(method_name="ping", payload={}))
    assert status_of(exc.value) == 404
    assert exc.value.response.headers["iothub-errorcode"] == "DeviceNotOnline"


def test_bad_sas_is_refused(hub) -> None:
    parts = dict(p.split("=", 1) for p in hub.info.connection_string.split(";"))
    wrong = f"HostName={parts['HostName']};SharedAccessKeyName=iothubowner;SharedAccessKey={generate_key()}"
    with pytest.raises(HttpOperationError) as exc:
        IoTHubRegistryManager.from_connection_string(wrong).get_devices()
    assert status_of(exc.value) == 401
    unknown = f"HostName={parts['HostName']};SharedAccessKeyName=nobody;SharedAccessKey={parts['SharedAccessKey']}"
    with pytest.raises(HttpOperationError) as exc:
        IoTHubRegistryManager.from_connection_string(unknown).get_devices()
    assert status_of(exc.value) == 401
    url = f"https://{parts['HostName']}/devices?api-version=2021-04-12"
    expired = generate_sas_token(parts["HostName"], parts["SharedAccessKey"], ttl=-10, key_name="iothubowner",
                                 quote_resource_plus=True)
    assert requests.get(url, headers={"Authorization": expired}, timeout=10).status_code == 401
    assert requests.get(url, timeout=10).status_code == 401
    good = generate_sas_token(parts["HostName"], parts["SharedAccessKey"], ttl=60, key_name="iothubowner",
                              quote_resource_plus=True, now=time.time())
    assert requests.get(url, headers={"Authorization": good}, timeout=10).status_code == 200


def test_restart_loses_nothing(hub_factory, tmp_path, monkeypatch) -> None:
    first, thread = hub_factory(state_dir=tmp_path / "state")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", first.info.ca_file)
    cs = first.info.connection_string
    rm, cm = IoTHubRegistryManager.from_connection_string(cs), IoTHubConfigurationManager.from_connection_string(cs)
    rm.create_device_with_sas("edge1", None, None, "enabled", iot_edge=True)
    rm.update_twin("edge1", Twin(tags={"environment": "prod"}), "*")
    cm.create_configuration(_config("prod", BASE, "tags.environment='prod'", 3))
    rm.create_module_with_sas("edge1", "sensor", "iotEdge", None, None)
    etag = cm.get_configuration("prod").etag
    thread.stop()
    second, _ = hub_factory(state_dir=tmp_path / "state", address=first.info.address, port=first.info.port)
    assert second.info.connection_string == cs
    rm2 = IoTHubRegistryManager.from_connection_string(cs)
    assert rm2.get_twin("edge1").tags == {"environment": "prod"}
    assert IoTHubConfigurationManager.from_connection_string(cs).get_configuration("prod").etag == etag
    assert rm2.get_module_twin("edge1", "sensor").properties.desired["interval"] == 1


def test_host_name_is_the_bare_address_and_audiences_may_carry_the_port(hub) -> None:
    """HTTPS on IoT Hub's 443, so HostName is what every SDK takes as a host name; a token signed for
    ``address:443`` (tools that append the port) is as good as one for the bare address."""
    info = hub.info
    assert info.port == 443 and info.host_name == info.address
    assert info.connection_string.startswith(f"HostName={info.address};")
    rm = IoTHubRegistryManager.from_connection_string(info.connection_string)
    rm.create_device_with_sas("d1", "", "", "enabled")
    assert rm.get_device("d1").device_id == "d1"
    parts = dict(p.split("=", 1) for p in info.connection_string.split(";"))
    url = f"https://{info.address}/devices/d1?api-version=2021-04-12"
    for audience in (info.address, f"{info.address}:443"):
        token = generate_sas_token(audience, parts["SharedAccessKey"], ttl=60, key_name="iothubowner")
        assert requests.get(url, headers={"Authorization": token}, timeout=10).status_code == 200, audience
    other = generate_sas_token("127.9.9.9", parts["SharedAccessKey"], ttl=60, key_name="iothubowner")
    response = requests.get(url, headers={"Authorization": other}, timeout=10)
    assert response.status_code == 401 and "127.9.9.9" in response.text


def test_port_443_taken_falls_back_to_8443_and_says_so(hub_factory, monkeypatch) -> None:
    import socket

    from tests.support.net import free_loopback_address

    address = free_loopback_address()
    squatter = socket.socket()
    squatter.bind((address, 443))
    squatter.listen(1)
    try:
        running, _ = hub_factory(address=address)
    finally:
        squatter.close()
    info = running.info
    assert info.port == 8443 and info.host_name == f"{address}:8443"
    assert info.connection_string.startswith(f"HostName={address}:8443;")
    note = running.standin.port_note or ""
    assert f"{address}:443" in note and "8443" in note and f"HostName={address}" in note
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", info.ca_file)
    rm = IoTHubRegistryManager.from_connection_string(info.connection_string)  # the Python SDK takes host:port
    rm.create_device_with_sas("d1", "", "", "enabled")
    parts = dict(p.split("=", 1) for p in info.connection_string.split(";"))
    bare = generate_sas_token(address, parts["SharedAccessKey"], ttl=60, key_name="iothubowner")
    assert requests.get(f"https://{address}:8443/devices/d1?api-version=2021-04-12",
                        headers={"Authorization": bare}, timeout=10).status_code == 200
