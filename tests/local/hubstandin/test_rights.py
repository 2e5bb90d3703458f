"""The rights table covers every REST route the stand-in serves (a route added without an entry is refused at run
time: this test says which one), and custom policies' rights are read as IoT Hub writes them."""

from __future__ import annotations

from edgegen.local.hubstandin.auth import ServiceAuthenticator
from edgegen.local.hubstandin.backend import HubBackend
from edgegen.local.hubstandin.http import make_app
from edgegen.local.hubstandin.rights import ALL_RIGHTS, REST_RIGHTS, policy_rights, rest_right
from edgegen.local.hubstandin.store import MemoryHubStore


def test_every_route_has_a_right() -> None:
    backend = HubBackend(MemoryHubStore(), "127.0.0.1:8443")
    app = make_app(backend, ServiceAuthenticator(("127.0.0.1:8443",), backend.policies))
    served = {(r.method, r.resource.canonical) for r in app.router.routes() if r.method != "HEAD"}
    assert served - set(REST_RIGHTS) == set()
    assert set(REST_RIGHTS) - served == set()  # no stale entries either
    assert all(right in ALL_RIGHTS for right in REST_RIGHTS.values())
    assert rest_right("get", "/devices/{id}") == "RegistryRead" and rest_right("GET", "/nowhere") is None


def test_built_in_and_custom_policy_rights() -> None:
    backend = HubBackend(MemoryHubStore(), "h")
    assert set(backend.policies) == {"iothubowner", "service", "device", "registryRead", "registryReadWrite"}
    assert policy_rights("service", {}) == {"ServiceConnect"}
    assert policy_rights("custom", {"rights": "RegistryRead, ServiceConnect"}) == {"RegistryRead", "ServiceConnect"}
    assert policy_rights("custom", {}) == frozenset()


def test_older_stores_get_the_missing_built_in_policies() -> None:
    store = MemoryHubStore()
    store.put("meta", "policies", {"iothubowner": {"primaryKey": "a", "secondaryKey": "b"}})
    backend = HubBackend(store, "h")
    assert backend.policies["iothubowner"] == {"primaryKey": "a", "secondaryKey": "b"}
    assert set(store.load("meta")["policies"]) == set(backend.policies) and len(backend.policies) == 5
