"""What only the local stand-in answers: ``GET /edgegen/status`` (connections and capacity, store sizes,
retention, monitors), read with the service connection string like any other REST call."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from typing import Any

from edgegen.common.sas import generate_sas_token, parse_connection_string
from edgegen.hub.connection import HubTarget
from edgegen.hub.errors import HubClientError

__all__ = ["standin_status"]


def standin_status(target: HubTarget, timeout: float = 10.0) -> dict[str, Any]:
    if not target.is_local and not target.host_name.startswith("127."):
        raise HubClientError(f"{target.host_name} is not the local stand-in",
                             hint="Azure IoT Hub's own metrics are in the Azure portal")
    parts = parse_connection_string(target.connection_string)
    token = generate_sas_token(target.host_name, parts["SharedAccessKey"], key_name=parts["SharedAccessKeyName"],
                               ttl=600)
    request = urllib.request.Request(f"https://{target.host_name}/edgegen/status",
                                     headers={"Authorization": token})
    context = ssl.create_default_context(cafile=target.ca_file)
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            return dict(json.loads(response.read()))
    except urllib.error.HTTPError as exc:
        raise HubClientError(f"the local hub answered {exc.code} to GET /edgegen/status",
                             hint="is the connection string this hub's?") from None
    except (OSError, ValueError) as exc:
        raise HubClientError(f"cannot read the local hub's status at {target.host_name}: {exc}",
                             hint="is 'edgegen hub serve' running?") from None
