"""sensor — simulated machine telemetry on output ``temperatureOutput``.

A standalone IoT Edge module (azure-iot-device only). Environment:
  SEND_INTERVAL   seconds between messages (default 5)          twin desired ``SendInterval`` overrides
  MESSAGE_COUNT   messages to send, 0 = forever (default 500)    method ``reset`` starts counting again
  ANOMALY_RATE    share of readings with an injected anomaly (default 0.02)
  SEED            random seed (default: none)
  REPORT_INTERVAL seconds between twin reports of ``sent`` while sending (default 10)
  LOG_LEVEL       python logging level (default INFO)
Twin desired ``SendData`` (true/false) pauses and resumes. Direct method ``reset`` restarts the simulation.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

from azure.iot.device import Message, MethodResponse
from azure.iot.device.aio import IoTHubModuleClient
from simulation import Simulator

OUTPUT = "temperatureOutput"
log = logging.getLogger("sensor")


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "")
    try:
        return float(raw) if raw.strip() else default
    except ValueError:
        raise SystemExit(f"sensor: environment variable {name}={raw!r} is not a number") from None


class Sensor:
    def __init__(self, client: IoTHubModuleClient, sim: Simulator, interval: float, count: int,
                 report_interval: float = 10.0) -> None:
        self.client = client
        self.report_interval = report_interval
        self.last_report = 0.0
        self.sim = sim
        self.interval = interval
        self.count = count
        self.sent = 0
        self.failed = 0
        # A message whose send failed is sent again as it was (same messageId, same reading): the hub may have
        # stored it before the connection broke (a lost PUBACK), and a receiver must be able to tell a resend
        # from a new reading. A new Message would make one reading count twice.
        self.unsent: Message | None = None
        self.send_data = True
        self.batch_id = str(uuid.uuid4())
        self.stop = asyncio.Event()
        self.wake = asyncio.Event()  # set when a twin patch or reset changes the schedule
        self.loop = asyncio.get_running_loop()
        self.background: set[asyncio.Future[None]] = set()

    # -- SDK callbacks: run on SDK threads, only hand over to our loop --------------------------------------------
    def on_twin_patch(self, patch: dict[str, Any]) -> None:
        self.loop.call_soon_threadsafe(self.apply_desired, patch)

    def on_method(self, request: Any) -> None:
        asyncio.run_coroutine_threadsafe(self.handle_method(request), self.loop)

    # -- on our loop ----------------------------------------------------------------------------------------------
    def apply_desired(self, desired: dict[str, Any]) -> None:
        if "SendData" in desired:
            self.send_data = bool(desired["SendData"])
            log.info("SendData = %s", self.send_data)
        if "SendInterval" in desired:
            try:
                value = float(desired["SendInterval"])
                if value <= 0:
                    raise ValueError
                self.interval = value
                log.info("SendInterval = %s s", value)
            except (TypeError, ValueError):
                log.error("ignoring twin desired SendInterval=%r: not a positive number", desired["SendInterval"])
        self.wake.set()
        task = asyncio.ensure_future(self.report())
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def handle_method(self, request: Any) -> None:
        if request.name == "reset":
            self.sim.reset()
            previous, self.sent = self.sent, 0
            self.batch_id = str(uuid.uuid4())
            log.info("reset after %d messages", previous)
            self.wake.set()
            status, payload = 200, {"reset": True, "previousSent": previous}
        else:
            status, payload = 404, {"error": f"unknown method {request.name!r}; try 'reset'"}
        response = MethodResponse.create_from_method_request(request, status, payload)
        await self.client.send_method_response(response)
        await self.report()

    async def report(self) -> None:
        self.last_report = self.loop.time()
        patch = {"sensor": {"sent": self.sent, "failed": self.failed, "sendData": self.send_data,
                            "sendInterval": self.interval, "messageCount": self.count, "batchId": self.batch_id}}
        try:
            await asyncio.wait_for(self.client.patch_twin_reported_properties(patch), 10)
        except Exception as exc:  # reporting is best effort; the log says why
            log.warning("could not report twin properties: %s", exc)

    async def send_one(self) -> None:
        msg = self.unsent
        if msg is None or msg.custom_properties.get("batchId") != self.batch_id:
            body = json.dumps(self.sim.step().body(datetime.now(UTC)))
            msg = Message(body, content_encoding="utf-8", content_type="application/json")
            msg.message_id = str(uuid.uuid4())
            msg.custom_properties["sequenceNumber"] = str(self.sent + 1)
            msg.custom_properties["batchId"] = self.batch_id
        try:
            await self.client.send_message_to_output(msg, OUTPUT)
        except Exception as exc:
            self.failed += 1
            self.unsent = msg
            log.error("message %d not sent (sent again next time, same messageId): %s", self.sent + 1, exc)
            return
        self.unsent = None
        body = msg.data
        self.sent += 1
        log.info("sent message %d: %s", self.sent, body)
        if self.count and self.sent == self.count:
            log.info("sent all %d messages; idle until a reset", self.count)
            await self.report()
        elif self.loop.time() - self.last_report >= self.report_interval:  # keeps `sent` current in every mode
            task = asyncio.ensure_future(self.report())
            self.background.add(task)
            task.add_done_callback(self.background.discard)

    async def run(self) -> None:
        while not self.stop.is_set():
            if self.send_data and (self.count == 0 or self.sent < self.count):
                await self.send_one()
            self.wake.clear()
            waiters = [asyncio.ensure_future(self.stop.wait()), asyncio.ensure_future(self.wake.wait())]
            await asyncio.wait(waiters, timeout=self.interval, return_when=asyncio.FIRST_COMPLETED)
            for w in waiters:
                w.cancel()


async def main() -> int:
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO").upper(), stream=sys.stdout,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("azure").setLevel(logging.WARNING)
    interval = env_float("SEND_INTERVAL", 5.0)
    count = int(env_float("MESSAGE_COUNT", 500))
    seed_raw = os.environ.get("SEED", "").strip()
    sim = Simulator(seed=int(seed_raw) if seed_raw else None, anomaly_rate=env_float("ANOMALY_RATE", 0.02))

    client = IoTHubModuleClient.create_from_edge_environment()
    try:
        await client.connect()
    except Exception as exc:
        log.error("cannot connect to edgeHub (%s: %s); exiting so the restart policy applies", type(exc).__name__, exc)
        await client.shutdown()
        return 1
    sensor = Sensor(client, sim, interval, count, env_float("REPORT_INTERVAL", 10.0))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, sensor.stop.set)
    try:
        try:
            twin = await asyncio.wait_for(client.get_twin(), 30)
            sensor.apply_desired(twin.get("desired", {}))
        except TimeoutError:
            log.warning("no twin reply within 30 s; starting with the environment's settings")
        # Handler setters block until subscribed: keep them off the loop.
        await loop.run_in_executor(None, setattr, client, "on_twin_desired_properties_patch_received",
                                   sensor.on_twin_patch)
        await loop.run_in_executor(None, setattr, client, "on_method_request_received", sensor.on_method)
        log.info("sensor started: every %s s, %s messages, output %s", sensor.interval, count or "unlimited", OUTPUT)
        await sensor.report()
        await sensor.run()
    finally:
        log.info("stopping after %d messages", sensor.sent)
        await sensor.report()
        try:
            await asyncio.wait_for(client.shutdown(), 10)
        except Exception as exc:
            log.warning("shutdown: %s", exc)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
