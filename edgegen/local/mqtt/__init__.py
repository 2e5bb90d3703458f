"""An IoT-Hub-dialect MQTT 3.1.1 server: codec, topics, sessions, transport, SAS auth and the identity-aware gateway.

Used by the local edge hub (module identities) and the local IoT Hub stand-in (device identities).
See docs/mqtt-gateway.md.
"""

from edgegen.local.mqtt.auth import Authenticated, Authenticator, AuthError, SasAuthenticator
from edgegen.local.mqtt.codec import MqttCodecError
from edgegen.local.mqtt.errors import (
    GatewayUnavailable,
    InvalidRequest,
    MqttError,
    NotConnected,
    NotPermitted,
    Revoked,
)
from edgegen.local.mqtt.gateway import (
    BaseGatewayHandler,
    GatewayError,
    GatewayHandler,
    MethodTimeoutError,
    MqttGateway,
    TelemetryMessage,
    TelemetrySink,
)
from edgegen.local.mqtt.store import MemorySessionStore, SessionStore, SqliteSessionStore
from edgegen.local.mqtt.topics import SYSTEM_PROPERTY_NAMES, Identity, TopicError

__all__ = [
    "SYSTEM_PROPERTY_NAMES",
    "AuthError",
    "Authenticated",
    "Authenticator",
    "BaseGatewayHandler",
    "GatewayError",
    "GatewayHandler",
    "GatewayUnavailable",
    "Identity",
    "InvalidRequest",
    "MemorySessionStore",
    "MethodTimeoutError",
    "MqttCodecError",
    "MqttError",
    "MqttGateway",
    "NotConnected",
    "NotPermitted",
    "Revoked",
    "SasAuthenticator",
    "SessionStore",
    "SqliteSessionStore",
    "TelemetryMessage",
    "TelemetrySink",
    "TopicError",
    "server_ssl_context",
]


def server_ssl_context(cert_file: str, key_file: str):
    """A TLS server context (TLS 1.2+) from a certificate and key (see edgegen.common.certs)."""
    import ssl

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(cert_file), str(key_file))
    ctx.num_tickets = 0  # no client here resumes TLS sessions: tickets would cost every handshake for nothing
    return ctx
