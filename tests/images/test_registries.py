from __future__ import annotations

import pytest

from edgegen.images.registries import (
    Masker,
    Registry,
    find_registry,
    image_registry,
    registries_from_env,
    registry_credentials_for_manifest,
)

ENV = {
    "CONTAINER_REGISTRY_SERVER": "myacr.azurecr.io",
    "CONTAINER_REGISTRY_USERNAME": "myacr",
    "CONTAINER_REGISTRY_PASSWORD": "p@ss-main",
    "CONTAINER_REGISTRY_SERVER_2": "https://other.example.com:5443/",
    "CONTAINER_REGISTRY_USERNAME_2": "bob",
    "CONTAINER_REGISTRY_PASSWORD_2": "p@ss-two",
    "CONTAINER_REGISTRY_SERVER_LOCAL": "localhost:5000",
    "CONTAINER_REGISTRY_USERNAME_LOCAL": "",
    "CONTAINER_REGISTRY_PASSWORD_LOCAL": "",
    "PATH": "/usr/bin",
}


def test_main_and_suffixed_registries_are_read() -> None:
    regs = registries_from_env(ENV)
    assert [(r.suffix, r.server, r.username, r.password) for r in regs] == [
        ("", "myacr.azurecr.io", "myacr", "p@ss-main"),
        ("_2", "https://other.example.com:5443/", "bob", "p@ss-two"),
        ("_LOCAL", "localhost:5000", "", ""),
    ]
    assert regs[1].host == "other.example.com:5443"
    assert regs[1].env_names == (
        "CONTAINER_REGISTRY_SERVER_2",
        "CONTAINER_REGISTRY_USERNAME_2",
        "CONTAINER_REGISTRY_PASSWORD_2",
    )
    assert regs[2].auth_config() is None
    assert regs[0].auth_config() == {"username": "myacr", "password": "p@ss-main", "serveraddress": "myacr.azurecr.io"}


def test_password_never_in_repr() -> None:
    reg = Registry("r.example.com", "u", "topsecret")
    assert "topsecret" not in repr(reg)


def test_credentials_without_server_are_kept_like_iotedgedev_but_never_used() -> None:
    # the VS Code extension's .env: user name and password per registry, the address only in the template
    env = {"CONTAINER_REGISTRY_USERNAME_myacr": "x", "CONTAINER_REGISTRY_PASSWORD_myacr": "s3cret-y",
           "CONTAINER_REGISTRY_SERVER": "localhost:5000"}
    regs = registries_from_env(env, "sol/.env")
    assert [(r.suffix, r.server, r.username) for r in regs] == [("", "localhost:5000", ""), ("_myacr", "", "x")]
    assert find_registry("myacr.azurecr.io/m:1", regs) is None
    assert find_registry("m:1", regs) is None  # an empty server is not docker.io either
    assert registry_credentials_for_manifest(regs) == {}
    assert Masker.for_registries(regs)("password s3cret-y") == "password ****"


@pytest.mark.parametrize(
    ("image", "host"),
    [
        ("myacr.azurecr.io/sensor:0.1.0-amd64", "myacr.azurecr.io"),
        ("localhost:5000/sensor:0.1.0-amd64", "localhost:5000"),
        ("localhost/sensor", "localhost"),
        ("127.0.0.1:5999/a/b:1", "127.0.0.1:5999"),
        ("library/python:3.11", "docker.io"),
        ("python", "docker.io"),
    ],
)
def test_image_registry(image: str, host: str) -> None:
    assert image_registry(image) == host


def test_manifest_credentials_only_for_used_registries_with_credentials() -> None:
    regs = registries_from_env(ENV)
    images = ["myacr.azurecr.io/sensor:0.1.0-amd64", "localhost:5000/monitor:0.1.0-amd64", "mcr.microsoft.com/x:1"]
    assert registry_credentials_for_manifest(regs, images) == {
        "myacr": {"username": "myacr", "password": "p@ss-main", "address": "myacr.azurecr.io"}
    }
    everything = registry_credentials_for_manifest(regs)
    assert everything == {
        "myacr": {"username": "myacr", "password": "p@ss-main", "address": "myacr.azurecr.io"},
        "other": {"username": "bob", "password": "p@ss-two", "address": "https://other.example.com:5443/"},
    }
    assert find_registry("other.example.com:5443/x:1", regs) is regs[1]
    assert find_registry("nowhere.example.com/x:1", regs) is None


def test_manifest_credential_names_are_unique_and_twin_safe() -> None:
    regs = [
        Registry("acr.azurecr.io", "a", "1"),
        Registry("acr.azurecr.cn", "b", "2", "_2"),
        Registry("acr.example.org", "c", "3", "_X"),
        Registry("127.0.0.1:5000", "d", "4", "_4"),
    ]
    creds = registry_credentials_for_manifest(regs)
    assert list(creds) == ["acr", "acr_2", "acr_X", "127_0_0_1"]
    for name in creds:
        assert not set(name) & set(".$# ")


def test_masker_hides_every_secret_longest_first() -> None:
    mask = Masker(["abc", "abcdef", ""])
    assert mask("token abcdef and abc.") == "token **** and ****."
    mask2 = Masker.for_registries(registries_from_env(ENV))
    assert "p@ss" not in mask2("login p@ss-main / p@ss-two failed")


def test_apply_registry_credentials_adds_used_registries_and_keeps_template_entries() -> None:
    from edgegen.images.registries import apply_registry_credentials
    from tests.images.conftest import agent_template

    regs = registries_from_env(ENV)
    manifest = agent_template({"s": "myacr.azurecr.io/sensor:0.1.0-amd64", "o": "other.example.com:5443/o:1"})
    settings = manifest["modulesContent"]["$edgeAgent"]["properties.desired"]["runtime"]["settings"]
    settings["registryCredentials"] = {
        "other": {"username": "$U", "password": "$P", "address": "other.example.com:5443"},  # written by hand
    }
    out = apply_registry_credentials(manifest, regs)
    creds = out["modulesContent"]["$edgeAgent"]["properties.desired"]["runtime"]["settings"]["registryCredentials"]
    assert creds == {
        "other": {"username": "$U", "password": "$P", "address": "other.example.com:5443"},
        "myacr": {"username": "myacr", "password": "p@ss-main", "address": "myacr.azurecr.io"},
    }
    assert settings["registryCredentials"] == {  # the input is not modified
        "other": {"username": "$U", "password": "$P", "address": "other.example.com:5443"}
    }
    local_only = agent_template({"m": "localhost:5000/monitor:0.1.0-amd64"})
    assert apply_registry_credentials(local_only, regs) == local_only
