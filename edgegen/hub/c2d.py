"""Cloud-to-device messages from the service side: AMQP to ``/messages/devicebound`` with claims-based security,
as ``azure-iot-hub``'s ``send_c2d_message`` does (``uamqp``, which that SDK depends on), plus the stand-in's
consumer-group calls. Works against Azure and the local stand-in alike; ``target.ca_file`` (the stand-in's CA)
is what uamqp trusts when set.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any

from edgegen.common.sas import generate_sas_token, parse_connection_string
from edgegen.hub.connection import HubTarget
from edgegen.hub.errors import HubClientError

__all__ = ["consumer_groups", "send_c2d"]

ACK_MODES = ("none", "positive", "negative", "full")


def send_c2d(target: HubTarget, device_id: str, body: bytes, *, properties: Mapping[str, str] | None = None,
             ack: str = "none", message_id: str | None = None, correlation_id: str | None = None,
             content_type: str | None = None, content_encoding: str | None = None,
             ttl: float | None = None) -> str:
    """Queue ``body`` for ``device_id``; return the message id. Raises ``HubClientError`` when refused."""
    import uamqp
    from azure.core.credentials import AccessToken

    if ack not in ACK_MODES:
        raise HubClientError(f"--ack {ack!r} is not one of {', '.join(ACK_MODES)}")
    parts = parse_connection_string(target.connection_string)
    host, policy, key = target.host_name, parts["SharedAccessKeyName"], parts["SharedAccessKey"]

    def get_token() -> Any:
        return AccessToken(generate_sas_token(host, key, key_name=policy), int(time.time()) + 3600)

    auth = uamqp.authentication.JWTTokenAuth(
        audience=f"https://{host}", uri=f"https://{host}", get_token=get_token,
        token_type=b"servicebus.windows.net:sastoken", verify=target.ca_file)
    props = uamqp.message.MessageProperties()
    sent_id = message_id or str(uuid.uuid4())
    props.message_id = sent_id
    props.to = f"/devices/{device_id}/messages/devicebound"
    if correlation_id:
        props.correlation_id = correlation_id
    if content_type:
        props.content_type = content_type
    if content_encoding:
        props.content_encoding = content_encoding
    if ttl is not None:
        props.absolute_expiry_time = int((time.time() + ttl) * 1000)
    app = {**dict(properties or {}), "iothub-ack": ack}
    client = uamqp.SendClient(target=f"amqps://{host}/messages/devicebound", auth=auth)
    try:
        auth.update_token()
        client.queue_message(uamqp.Message(body, properties=props, application_properties=app))
        results = client.send_all_messages(close_on_done=True)
    except Exception as exc:  # uamqp raises its own tree; say what happened, not how
        raise HubClientError(f"cannot send to {device_id} through {host}: {exc}",
                             hint="check the connection string (a policy with ServiceConnect) and that the hub "
                                  "listens on AMQP port 5671") from None
    finally:
        client.close()
    if uamqp.constants.MessageState.SendFailed in results:
        raise HubClientError(f"the hub refused the message for {device_id!r}",
                             hint="is the device registered, its queue below 50 messages, and the policy "
                                  "allowed ServiceConnect?")
    return sent_id


def consumer_groups(target: HubTarget, method: str = "GET", name: str | None = None) -> list[str]:
    """List, create (PUT) or delete consumer groups of the local stand-in's built-in endpoint."""
    import requests

    if not target.is_local and not target.host_name.startswith("127."):
        raise HubClientError("consumer groups of an Azure IoT Hub are managed with ARM",
                             hint="az iot hub consumer-group create --hub-name … --name …")
    parts = parse_connection_string(target.connection_string)
    token = generate_sas_token(target.host_name, parts["SharedAccessKey"], key_name=parts["SharedAccessKeyName"])
    url = f"https://{target.host_name}/eventHubEndpoints/events/ConsumerGroups" + (f"/{name}" if name else "")
    try:
        response = requests.request(method, url, headers={"Authorization": token}, timeout=30,
                                    verify=target.ca_file or True)
    except requests.RequestException as exc:
        raise HubClientError(f"cannot reach {target.host_name}: {exc}") from None
    if response.status_code >= 300:
        try:
            message = response.json().get("Message", response.text)
        except ValueError:
            message = response.text
        raise HubClientError(f"{method} consumer group failed ({response.status_code}): {message}")
    if method != "GET":
        return consumer_groups(target)
    return [g["name"] for g in response.json().get("value", [])]
