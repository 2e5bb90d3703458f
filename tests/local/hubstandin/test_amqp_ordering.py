"""The order of frames the AMQP endpoint writes for a ``$cbs`` put-token, checked without sockets: a proton client
engine and the stand-in's ``AmqpConnection`` exchange bytes in memory.

uamqp's management client (``amqp_management.c``) fails an operation whose answer arrives before the request's
disposition ("Did not receive send confirmation"), which the Azure IoT service SDK and the Azure CLI report as a
failed put-token with status 200. So the disposition that settles the request must be written first.
"""

from __future__ import annotations

import asyncio
import ssl
import struct
from typing import Any

from proton import Connection, Data, Message, Transport, ulong

from edgegen.common.sas import generate_sas_token
from edgegen.local.hubstandin.amqp.connection import AmqpConnection
from edgegen.local.hubstandin.amqp.endpoint import AmqpEndpoint
from edgegen.local.hubstandin.backend import HubBackend
from edgegen.local.hubstandin.store import MemoryHubStore

HOST = "127.0.0.9"
TRANSFER, DISPOSITION = 0x14, 0x15


class MemoryIO(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()

    def write(self, data: Any) -> None:
        self.written.extend(data)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def close(self) -> None:
        pass


def performatives(stream: bytes) -> list[int]:
    """Descriptor codes of the AMQP frames in ``stream`` (whole frames only; empty frames skipped)."""
    codes, i = [], 0
    while i + 8 <= len(stream):
        size, doff, ftype, _ = struct.unpack(">IBBH", stream[i:i + 8])
        body = stream[i + doff * 4:i + size]
        if ftype == 0 and body:
            data = Data()
            data.decode(body)
            codes.append(int(data.get_object().descriptor))
        i += size
    return codes


def test_put_token_answer_comes_after_the_request_disposition() -> None:
    async def scenario() -> tuple[list[int], Message]:
        backend = HubBackend(MemoryHubStore(), HOST)
        endpoint = AmqpEndpoint(backend, HOST, ssl.create_default_context(), (HOST,))
        server, io = AmqpConnection(endpoint), MemoryIO()
        server.connection_made(io)

        client, transport = Connection(), Transport()
        transport.sasl().allowed_mechs("ANONYMOUS")
        transport.bind(client)
        client.open()
        session = client.session()
        session.open()
        requests = session.sender("cbs-requests")
        requests.target.address = "$cbs"
        requests.open()
        answers = session.receiver("cbs-answers")
        answers.source.address = "$cbs"
        answers.target.address = "cbs-answers"
        answers.flow(10)
        answers.open()
        delivered = 0

        def pump() -> None:
            nonlocal delivered
            for _ in range(20):
                pending = transport.pending()
                if pending > 0:
                    server.data_received(transport.peek(pending))
                    transport.pop(pending)
                if delivered < len(io.written):
                    transport.push(bytes(io.written[delivered:]))
                    delivered = len(io.written)
                elif pending <= 0:
                    return

        pump()
        assert requests.credit > 0, "the $cbs node gave no credit"
        mark = len(io.written)
        key = backend.policies["iothubowner"]["primaryKey"]
        request = Message(body=generate_sas_token(HOST, key, key_name="iothubowner"), id=ulong(7),
                          reply_to="cbs-answers", properties={
                              "operation": "put-token", "type": "servicebus.windows.net:sastoken", "name": HOST})
        requests.delivery(b"1")
        requests.send(request.encode())
        requests.advance()
        pump()
        answer = Message()
        delivery = answers.current
        assert delivery is not None and delivery.readable, "no answer on the reply link"
        answer.decode(answers.recv(delivery.pending))
        return performatives(bytes(io.written[mark:])), answer

    codes, answer = asyncio.run(scenario())
    assert answer.properties["status-code"] == 200 and answer.correlation_id == 7
    assert DISPOSITION in codes and TRANSFER in codes
    assert codes.index(DISPOSITION) < codes.index(TRANSFER), codes
