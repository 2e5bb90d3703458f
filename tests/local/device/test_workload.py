"""The workload API answers the real SDK's HSM client (trust bundle, sign) and refuses what it should."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import requests

from edgegen.common.sas import generate_sas_token, verify_sas_token
from edgegen.local.workload import ModuleKey, WorkloadApi
from tests.support.loopthread import LoopThread

KEY = "c2VjcmV0LWtleS1mb3ItdGVzdHMtMTIzNDU2Nzg5MA=="
PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"

pytestmark = pytest.mark.integration


@pytest.fixture
def api() -> Iterator[WorkloadApi]:
    server = WorkloadApi(lambda m: ModuleKey(KEY, "gen1") if m == "sensor" else None, lambda: PEM)
    with LoopThread("workload-loop") as loop_thread:
        loop_thread.run(server.start(), 10)
        try:
            yield server
        finally:
            loop_thread.run(server.stop(), 10)


def test_sdk_hsm_gets_trust_bundle_and_a_signature_that_verifies(api: WorkloadApi) -> None:
    from azure.iot.device.common.auth.sastoken import RenewableSasToken
    from azure.iot.device.iothub.edge_hsm import IoTEdgeHsm

    hsm = IoTEdgeHsm(module_id="sensor", generation_id="gen1", workload_uri=api.uri, api_version="2019-01-30")
    assert hsm.get_certificate() == PEM
    token = str(RenewableSasToken("hub.local/devices/dev/modules/sensor", hsm))
    verify_sas_token(token, KEY, resource="hub.local/devices/dev/modules/sensor")
    expected = generate_sas_token("hub.local/devices/dev/modules/sensor", KEY)
    assert token.split("&se=")[0].split("sig=")[0] == expected.split("sig=")[0]


def test_unknown_module_wrong_generation_and_bad_body(api: WorkloadApi) -> None:
    body = {"keyId": "primary", "algo": "HMACSHA256", "data": "aGVsbG8="}
    q = {"api-version": "2019-01-30"}
    assert requests.post(f"{api.uri}modules/other/genid/gen1/sign", params=q, json=body, timeout=5).status_code == 404
    assert requests.post(f"{api.uri}modules/sensor/genid/gen2/sign", params=q, json=body, timeout=5).status_code == 404
    bad = {**body, "data": "***"}
    assert requests.post(f"{api.uri}modules/sensor/genid/gen1/sign", params=q, json=bad, timeout=5).status_code == 400
    assert requests.get(f"{api.uri}trust-bundle", timeout=5).status_code == 400
    ok = requests.post(f"{api.uri}modules/sensor/genid/gen1/sign", params=q, json=body, timeout=5)
    assert ok.status_code == 200 and ok.json()["digest"]


def test_a_module_socket_signs_only_for_its_module(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from azure.iot.device.iothub.edge_hsm import IoTEdgeHsm

    keys = {"sensor": ModuleKey(KEY, "gen1"), "monitor": ModuleKey(KEY, "gen2")}

    async def main() -> None:
        api = WorkloadApi(keys.get, lambda: PEM, socket_dir=tmp_path / "wl")
        await api.start()
        try:
            sock = await api.module_socket("sensor")
            assert sock == await api.module_socket("sensor")  # one socket per module
            assert (tmp_path / "wl").stat().st_mode & 0o777 == 0o700 and sock.stat().st_mode & 0o777 == 0o666
            uri = f"unix://{sock}"

            def sign(module: str, gen: str) -> str:
                hsm = IoTEdgeHsm(module_id=module, generation_id=gen, workload_uri=uri, api_version="2019-01-30")
                assert hsm.get_certificate() == PEM
                return str(hsm.sign("data"))

            assert await asyncio.to_thread(sign, "sensor", "gen1")  # the real SDK over the unix socket
            with pytest.raises(Exception, match="Unable to sign"):
                await asyncio.to_thread(sign, "monitor", "gen2")

            def raw(module: str, gen: str) -> tuple[int, str]:
                import requests_unixsocket  # what the SDK uses for unix:// workload URIs

                url = f"http+unix://{str(sock).replace('/', '%2F')}/modules/{module}/genid/{gen}/sign"
                r = requests_unixsocket.Session().post(url, params={"api-version": "2019-01-30"},
                                                       json={"keyId": "primary", "algo": "HMACSHA256", "data": "ZA=="})
                return r.status_code, r.text

            status, text = await asyncio.to_thread(raw, "monitor", "gen2")
            assert status == 403 and "serves module 'sensor'" in text
            assert (await asyncio.to_thread(raw, "sensor", "gen1"))[0] == 200
        finally:
            await api.stop()
        assert not sock.exists()

    asyncio.run(main())
