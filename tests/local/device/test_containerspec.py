"""The container create body, merged the way edgeAgent/iotedged merge it (pure; the engine tests run it for real)."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from edgegen.local.containerspec import (
    DEVICE_LABEL,
    FINGERPRINT_LABEL,
    OWNER,
    OWNER_LABEL,
    WORKLOAD_DIR,
    WORKLOAD_SOCKET,
    ContainerFacts,
    auth_for,
    image_domain,
    merge_env,
    plan_container,
)
from edgegen.local.deployment import DesiredModule, RegistryCredential

FACTS = ContainerFacts("dev123", "127.0.0.7", "/state/workload/m")


def _module(create: dict | None = None, **kw: object) -> DesiredModule:
    return DesiredModule("m", "127.0.0.1:5000/m:1.0-amd64", env={"A": "manifest"},
                         create_options=json.dumps(create) if create is not None else "", **kw)  # type: ignore[arg-type]


def test_env_labels_binds_and_network_fallback() -> None:
    create = {"Env": ["A=create", "B=2"], "Labels": {"mine": "x"},
              "HostConfig": {"Binds": ["/data:/data:ro"], "Memory": 67108864, "RestartPolicy": {"Name": "always"},
                             "PortBindings": {"5001/tcp": [{"HostPort": "5001"}]}}}
    plan = plan_container(_module(create, version="1.2", restart_policy="on-failure"),
                          {"A": "manifest", "IOTEDGE_MODULEID": "m", "IOTEDGE_WORKLOADURI": "http://127.0.0.1:1/"},
                          FACTS)
    body = plan.body
    # createOptions' Env wins over the manifest's env (iotedged's merge_env); the workload URI is the socket
    # on the host network, edgegen's modules are told to listen on loopback only (EDGEGEN_LISTEN_ADDRESS)
    assert body["Env"] == ["A=create", "B=2", "EDGEGEN_LISTEN_ADDRESS=127.0.0.1", "IOTEDGE_MODULEID=m",
                           f"IOTEDGE_WORKLOADURI=unix://{WORKLOAD_SOCKET}"]
    assert body["Image"] == "127.0.0.1:5000/m:1.0-amd64"
    labels = body["Labels"]
    assert labels["mine"] == "x" and labels[OWNER_LABEL] == OWNER and labels[DEVICE_LABEL] == "dev123"
    assert labels["net.azure-devices.edge.original-image"] == "127.0.0.1:5000/m:1.0-amd64"
    assert labels["net.azure-devices.edge.restartPolicy"] == "OnFailure"
    assert labels["net.azure-devices.edge.desiredStatus"] == "running"
    assert labels["net.azure-devices.edge.version"] == "1.2"
    assert json.loads(labels["net.azure-devices.edge.normalizedCreateOptions"]) == create
    assert labels[FINGERPRINT_LABEL] == plan.fingerprint
    host = body["HostConfig"]
    assert host["Binds"] == ["/data:/data:ro", f"/state/workload/m:{WORKLOAD_DIR}"]
    assert host["Memory"] == 67108864 and "RestartPolicy" not in host  # the agent restarts, not the engine
    assert host["CapDrop"] == ["CHOWN", "SETUID"]
    assert host["NetworkMode"] == "host" and host["ExtraHosts"] == ["edgeHub:127.0.0.7"]
    assert any("host network" in n for n in plan.notes) and any("PortBindings (5001/tcp)" in n for n in plan.notes)


def test_listen_address_only_on_the_host_network_and_createoptions_may_set_it() -> None:
    def env(create: dict) -> list[str]:
        return [e for e in plan_container(_module(create), {}, FACTS).body["Env"] if e.startswith("EDGEGEN_LISTEN")]

    assert env({}) == env({"HostConfig": {"NetworkMode": "host"}}) == ["EDGEGEN_LISTEN_ADDRESS=127.0.0.1"]
    assert env({"HostConfig": {"NetworkMode": "bridge"}}) == []  # its own namespace: the image's 0.0.0.0 is right
    assert env({"Env": ["EDGEGEN_LISTEN_ADDRESS=127.0.0.9"]}) == ["EDGEGEN_LISTEN_ADDRESS=127.0.0.9"]


def test_own_network_is_kept_and_privileges_dropped_unless_allowed() -> None:
    create = {"HostConfig": {"NetworkMode": "bridge", "Privileged": True, "CapAdd": ["NET_ADMIN"],
                             "CapDrop": ["MKNOD"]}}
    plan = plan_container(_module(create), {}, FACTS)
    host = plan.body["HostConfig"]
    assert host["NetworkMode"] == "bridge" and "ExtraHosts" not in host
    assert host["Privileged"] is False and "CapAdd" not in host and host["CapDrop"] == ["CHOWN", "SETUID", "MKNOD"]
    assert any("Privileged" in n for n in plan.notes)
    allowed = plan_container(_module(create), {}, ContainerFacts("d", "127.0.0.7", "/s", allow_elevated=True))
    assert allowed.body["HostConfig"]["Privileged"] is True and allowed.body["HostConfig"]["CapAdd"] == ["NET_ADMIN"]


def test_fingerprint_follows_every_setting() -> None:
    base = plan_container(_module({}), {"X": "1"}, FACTS).fingerprint
    assert plan_container(_module({}), {"X": "1"}, FACTS).fingerprint == base
    assert plan_container(_module({}), {"X": "2"}, FACTS).fingerprint != base
    assert plan_container(_module({"HostConfig": {"Memory": 1}}), {"X": "1"}, FACTS).fingerprint != base


def test_registry_of_an_image_and_its_credentials() -> None:
    assert image_domain("alpine") is None
    assert image_domain("user/app:1") == "https://index.docker.io/v1/"
    assert image_domain("127.0.0.1:5000/app:1") == "127.0.0.1:5000"
    assert image_domain("myreg.azurecr.io/a/b@sha256:00") == "myreg.azurecr.io"
    creds = [RegistryCredential("a", "other.io", "u1", "p1"), RegistryCredential("b", "MyReg.azurecr.io", "u2", "p2")]
    assert auth_for("myreg.azurecr.io/app:1", creds) == {"username": "u2", "password": "p2",
                                                         "serveraddress": "MyReg.azurecr.io"}
    assert auth_for("alpine:3", creds) is None and auth_for("third.io/x:1", creds) is None


_key = st.text(alphabet=st.characters(blacklist_characters="=\x00", blacklist_categories=("Cs",)), min_size=1,
               max_size=8)


@given(st.dictionaries(_key, st.text(max_size=8), max_size=6),
       st.lists(st.tuples(_key, st.text(max_size=8)), max_size=6))
def test_merge_env_createoptions_wins_and_every_key_once(env: dict[str, str], create: list[tuple[str, str]]) -> None:
    merged = merge_env([f"{k}={v}" for k, v in create], env)
    as_dict = dict(item.split("=", 1) for item in merged)
    expected = {**env, **dict(create)}
    assert as_dict == expected and len(merged) == len(expected)
    assert [item.split("=", 1)[0] for item in merged] == sorted(expected)
