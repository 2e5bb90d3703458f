"""Link handlers: what happens on a link once the router accepted it.

``OutboundLink`` (we send: partition readers, feedback, management replies) keeps a queue, sends while the
peer gives credit, presettles when the peer asked for settled deliveries, and reports each outcome (accepted,
rejected, released — or released when the link goes with it unsettled). ``InboundLink`` (the peer sends:
``$cbs``, ``$management``, C2D) grants credit, decodes each complete message with ``proton.Message`` and
settles it with the outcome its ``on_message`` returns.
"""

from __future__ import annotations

import itertools
import logging
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from proton import Condition, Delivery, Message

if TYPE_CHECKING:
    from edgegen.local.hubstandin.amqp.connection import AmqpConnection

__all__ = ["ACCEPTED", "InboundLink", "LinkHandler", "OutboundLink", "Outcome", "Rejected"]

log = logging.getLogger(__name__)
ACCEPTED = "accepted"
Outcome = Callable[[str | None], None]  # "accepted" / "rejected" / "released" / None (link gone)
_STATES = {Delivery.ACCEPTED: "accepted", Delivery.REJECTED: "rejected", Delivery.RELEASED: "released",
           Delivery.MODIFIED: "released"}
INBOUND_CREDIT = 100
MAX_MESSAGE_SIZE = 1024 * 1024


class Rejected(Exception):
    """``on_message`` refuses a message: it is settled as rejected with this condition."""

    def __init__(self, condition: str, description: str) -> None:
        super().__init__(description)
        self.condition = condition
        self.description = description


class LinkHandler:
    def __init__(self, conn: AmqpConnection, link: Any) -> None:
        self.conn = conn
        self.link = link

    def on_open(self) -> None: ...
    def on_flow(self) -> None: ...
    def on_delivery(self, delivery: Any) -> None: ...
    def on_close(self) -> None: ...

    def detach(self, condition: str, description: str) -> None:
        """Close the link from our side with an error (the peer sees a detach with that condition)."""
        self.link.condition = Condition(condition, description)
        self.link.close()
        self.conn._drop(self)
        self.conn.kick()


class OutboundLink(LinkHandler):
    def __init__(self, conn: AmqpConnection, link: Any) -> None:
        super().__init__(conn, link)
        self.queue: deque[tuple[bytes, Outcome | None]] = deque()
        self.unsettled: dict[str, Outcome | None] = {}
        self._tags = itertools.count(1)
        self.presettle = link.remote_snd_settle_mode == link.SND_SETTLED

    def fill(self, room: int) -> None:
        """Subclasses add up to ``room`` more messages from their source (called when credit allows)."""

    def send(self, message: Message, on_outcome: Outcome | None = None) -> None:
        self.queue.append((bytes(message.encode()), on_outcome))

    def pump(self) -> None:
        link = self.link
        if link.state & link.LOCAL_CLOSED:
            return
        room = link.credit - len(self.queue)
        if room > 0:
            self.fill(room)
        while self.queue and link.credit > 0:
            payload, on_outcome = self.queue.popleft()
            tag = str(next(self._tags))
            delivery = link.delivery(tag)
            link.send(payload)
            link.advance()
            if self.presettle:
                delivery.settle()
                if on_outcome is not None:
                    on_outcome(ACCEPTED)
            else:
                self.unsettled[tag] = on_outcome
        if link.drain_mode and link.credit > 0 and not self.queue:
            link.drained()

    def on_open(self) -> None:
        self.pump()

    def on_flow(self) -> None:
        self.pump()

    def on_delivery(self, delivery: Any) -> None:
        state = delivery.remote_state
        if not state and not delivery.remote_settled:
            return
        tag = delivery.tag
        on_outcome = self.unsettled.pop(tag.decode() if isinstance(tag, bytes) else str(tag), None)
        if on_outcome is not None:
            on_outcome(_STATES.get(state, "released"))
        delivery.settle()

    def on_close(self) -> None:
        pending = list(self.unsettled.values()) + [cb for _, cb in self.queue]
        self.unsettled.clear()
        self.queue.clear()
        for on_outcome in pending:
            if on_outcome is not None:
                on_outcome(None)


class InboundLink(LinkHandler):
    credit = INBOUND_CREDIT

    def on_open(self) -> None:
        self.link.flow(self.credit)

    def on_message(self, message: Message, delivery: Any) -> str | None:
        """Return ``ACCEPTED`` (or None to settle it later yourself); raise ``Rejected`` to refuse it."""
        raise NotImplementedError

    def on_delivery(self, delivery: Any) -> None:
        link = self.link
        if not delivery.readable or delivery.partial:
            if delivery.pending > MAX_MESSAGE_SIZE:
                self.detach("amqp:link:message-size-exceeded", f"messages are limited to {MAX_MESSAGE_SIZE} bytes")
            return
        data = link.recv(delivery.pending)
        link.advance()
        message = Message()
        try:
            message.decode(data)
            outcome = self.on_message(message, delivery)
        except Rejected as exc:
            delivery.local.condition = Condition(exc.condition, exc.description)
            self._settle(delivery, Delivery.REJECTED)
        except Exception as exc:
            log.info("AMQP %s: message on %s refused: %s", self.conn.peer, link.name, exc)
            delivery.local.condition = Condition("amqp:decode-error", f"the message cannot be read: {exc}")
            self._settle(delivery, Delivery.REJECTED)
        else:
            if outcome == ACCEPTED:
                self._settle(delivery, Delivery.ACCEPTED)
        if link.credit < self.credit // 2:
            link.flow(self.credit - link.credit)

    @staticmethod
    def _settle(delivery: Any, state: int) -> None:
        if not delivery.settled:
            delivery.update(state)
        delivery.settle()
