"""SAS tokens: ours must verify tokens made by the real SDKs, and refuse wrong key, resource or expiry."""

from __future__ import annotations

import time

import pytest

from edgegen.common.sas import SasError, generate_key, generate_sas_token, verify_sas_token


def test_roundtrip_and_refusals() -> None:
    key = generate_key()
    token = generate_sas_token("127.0.0.1/devices/d1/modules/m1", key)
    assert verify_sas_token(token, key, resource="127.0.0.1/devices/d1/modules/m1").resource.endswith("m1")
    with pytest.raises(SasError, match="signature"):
        verify_sas_token(token, generate_key())
    with pytest.raises(SasError, match="not .*modules/m2"):
        verify_sas_token(token, key, resource="127.0.0.1/devices/d1/modules/m2")
    expired = generate_sas_token("h/devices/d1", key, ttl=-10)
    with pytest.raises(SasError, match="expired"):
        verify_sas_token(expired, key)


def test_verifies_device_sdk_token() -> None:
    from azure.iot.device.common.auth.sastoken import RenewableSasToken
    from azure.iot.device.common.auth.signing_mechanism import SymmetricKeySigningMechanism

    key = generate_key()
    uri = "127.0.0.1/devices/dev1/modules/inference"
    sdk_token = str(RenewableSasToken(uri, SymmetricKeySigningMechanism(key), ttl=3600))
    parsed = verify_sas_token(sdk_token, key, resource=uri)
    assert parsed.expiry > time.time()


def test_verifies_service_sdk_token() -> None:
    from azure.iot.hub.auth import ConnectionStringAuthentication

    key = generate_key()
    auth = ConnectionStringAuthentication(
        f"HostName=127.0.0.1:8443;SharedAccessKeyName=iothubowner;SharedAccessKey={key}"
    )
    header = auth.signed_session().headers["Authorization"]
    parsed = verify_sas_token(header, key, resource="127.0.0.1:8443", key_name="iothubowner")
    assert parsed.key_name == "iothubowner"
