"""Request/response nodes (``$cbs``, ``$management``): the peer sends requests on a link *to* the node and reads
answers on a link *from* it; an answer goes to the link whose target is the request's ``reply-to`` (else any
reply link of that node on the connection), with ``correlation-id`` = the request's ``message-id`` (its AMQP
type kept: ``uamqp`` matches a ulong) and ``status-code``/``status-description`` application properties.

The request is settled (accepted) first and the answer sent once that disposition is written: uamqp's
management client (``amqp_management.c``) fails an operation with "did not receive send confirmation" when
the answer arrives before the request's disposition, and reports it as a failed put-token with status 200.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from proton import Delivery, Message, int32

from edgegen.local.hubstandin.amqp.links import InboundLink, OutboundLink
from edgegen.local.hubstandin.errors import HubError, InvalidArgument, NotFound, Unauthorized

if TYPE_CHECKING:
    from edgegen.local.hubstandin.amqp.connection import AmqpConnection

__all__ = ["ReplyLink", "RequestNode", "status_of"]

log = logging.getLogger(__name__)


def status_of(exc: HubError) -> int:
    if isinstance(exc, Unauthorized):
        return 401
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, InvalidArgument):
        return 400
    return 500


class ReplyLink(OutboundLink):
    def __init__(self, conn: AmqpConnection, link: Any, node: str) -> None:
        super().__init__(conn, link)
        self.node = node
        self.address = (link.remote_target.address or "") if link.remote_target else ""

    def on_open(self) -> None:
        self.conn.reply_links.append(self)
        super().on_open()

    def on_close(self) -> None:
        if self in self.conn.reply_links:
            self.conn.reply_links.remove(self)
        super().on_close()


class RequestNode(InboundLink):
    node = ""

    def on_message(self, message: Message, delivery: Any) -> str | None:
        props = {str(k): v for k, v in (message.properties or {}).items()}
        try:
            status, description, body = self.handle(props, message)
        except HubError as exc:
            status, description, body = status_of(exc), exc.message, None
        self._settle(delivery, Delivery.ACCEPTED)
        self.conn.after_flush(lambda: self.respond(message, status, description, body))
        return None

    def handle(self, props: dict[str, Any], message: Message) -> tuple[int, str, Any]:
        raise NotImplementedError

    def respond(self, request: Message, status: int, description: str, body: Any) -> None:
        reply_to = request.reply_to
        links = [r for r in self.conn.reply_links if r.node == self.node]
        target = next((r for r in links if reply_to and r.address == reply_to), links[0] if links else None)
        if target is None:
            log.info("AMQP %s: no reply link for a %s request (reply-to %r)", self.conn.peer, self.node, reply_to)
            return
        answer = Message(body=body, correlation_id=request.id, address=reply_to,
                         properties={"status-code": int32(status), "status-description": description,
                                     "statusCode": int32(status), "statusDescription": description})
        target.send(answer)
        target.pump()
