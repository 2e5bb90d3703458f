"""modules/monitor as a real process against Mosquitto (TLS), including a broker restart mid-stream."""

from __future__ import annotations

import re
import signal
import tempfile
import time
from datetime import datetime
from pathlib import Path

import pytest

from tests.modules.conftest import run_module
from tests.support.mosquitto import run_mosquitto

pytestmark = pytest.mark.integration


def test_forwards_any_input_with_origin_time_and_per_origin_sequence(tmp_path: Path) -> None:
    with run_module("monitor", tmp_path, env={"REPORT_INTERVAL": "0.3"}, desired={"heartbeatSeconds": 0}) as run:
        run.hub.wait_reported(lambda r: "monitor" in r, 30)
        sent_at = time.time()
        run.hub.send_input("scored", b'{"anomaly": false}', {"$.mid": "a1", "$.cid": "c1", "$.ct": "application/json",
                                                             "$.ce": "utf-8", "$.cdid": "dev1", "$.cmid": "inference",
                                                             "k": "v"})
        run.hub.send_input("errors", b"\x00binary\xff", {"$.mid": "b1", "$.cdid": "dev1", "$.cmid": "inference"})
        run.hub.send_input("scored", b"{}", {"$.mid": "c1", "$.cdid": "leaf7"})
        outs = {m.properties["$.mid"]: m for m in run.hub.wait_output("upstream", 3)}
        first = outs["a1"]
        assert first.body == b'{"anomaly": false}'
        prefix = "devices/dev1/modules/monitor/messages/events/"
        assert first.topic.startswith(prefix + "%24.on=upstream&%24.mid=a1&%24.cid=c1")
        assert first.properties["$.ct"] == "application/json" and first.properties["$.ce"] == "utf-8"
        assert first.properties["k"] == "v" and first.properties["inputName"] == "scored"
        assert first.properties["originDeviceId"] == "dev1" and first.properties["originModuleId"] == "inference"
        assert first.properties["sequenceNumber"] == "1"
        received = datetime.fromisoformat(first.properties["receivedTime"].replace("Z", "+00:00"))
        assert received.tzinfo is not None and abs(received.timestamp() - sent_at) < 30
        assert first.properties["receivedTime"].endswith("Z")
        second = outs["b1"]
        assert second.body == b"\x00binary\xff" and second.properties["sequenceNumber"] == "2"
        assert second.properties["inputName"] == "errors"
        leaf = outs["c1"]
        assert leaf.properties["originDeviceId"] == "leaf7" and "originModuleId" not in leaf.properties
        assert leaf.properties["sequenceNumber"] == "1"  # its own origin, its own sequence
        state = run.hub.wait_reported(lambda r: r["monitor"]["forwarded"] == 3 and r["monitor"])
        assert state["perOrigin"] == {"dev1/inference": 2, "leaf7": 1} and state["pending"] == 0
        assert "a1 #1 from dev1/inference via scored" in run.log()
        assert run.terminate() == 0, run.log()


def test_heartbeat_follows_twin_and_failed_forwards_are_retried_across_broker_restart(tmp_path: Path) -> None:
    workdir = Path(tempfile.mkdtemp(dir=tmp_path, prefix="broker-"))
    broker_cm = run_mosquitto(tls=True, workdir=workdir)
    broker = broker_cm.__enter__()
    try:
        with run_module("monitor", tmp_path, env={"REPORT_INTERVAL": "0.3"}, desired={"heartbeatSeconds": 0},
                        broker=broker) as run:
            run.hub.wait_reported(lambda r: "monitor" in r, 30)
            time.sleep(0.5)
            assert run.hub.outputs_on("upstream") == []  # heartbeat off
            run.hub.push_desired({"heartbeatSeconds": 0.4})
            beat = run.hub.wait_output("upstream", 1)[0]
            assert beat.properties["messageType"] == "heartbeat" and beat.json()["type"] == "heartbeat"
            assert beat.json()["heartbeatSeconds"] == 0.4

            run.hub.send_input("scored", b'{"n": 1}', {"$.mid": "before", "$.cdid": "dev1", "$.cmid": "inference"})
            run.hub.wait_until(lambda r: any(m.properties.get("$.mid") == "before" for m in r.outputs))
            broker_cm.__exit__(None, None, None)  # heartbeats made now cannot be sent: they must be retried
            last_before = max(m.json()["heartbeats"] for m in run.hub.outputs_on("upstream")
                              if m.properties.get("messageType") == "heartbeat")
            time.sleep(1.5)
            broker_cm = run_mosquitto(tls=True, workdir=workdir, host=broker.host)
            broker_cm.__enter__()

            def beats(r: object) -> list[int]:
                return [m.json()["heartbeats"] for m in run.hub.outputs_on("upstream")
                        if m.properties.get("messageType") == "heartbeat"]

            run.hub.wait_until(lambda r: max(beats(r)) >= last_before + 6, 40, "heartbeats after the outage")
            numbers = beats(run.hub)
            assert numbers == sorted(numbers)  # in order
            assert set(range(1, numbers[-1] + 1)) == set(numbers)  # none lost across the outage
            run.hub.wait_reported(lambda r: r["monitor"]["retries"] > 0)
            assert "failed (attempt 1" in run.log()
            assert run.terminate() == 0, run.log()
    finally:
        broker_cm.__exit__(None, None, None)


def test_messages_taken_before_sigterm_are_forwarded_before_exit(tmp_path: Path) -> None:
    """The SDK acknowledges an input on receipt, so whatever the monitor took must go out before it exits; after
    SIGTERM it unsubscribes (edgeHub keeps the rest for its next run) and drains its queue."""
    with run_module("monitor", tmp_path, env={"REPORT_INTERVAL": "0.3"}, desired={"heartbeatSeconds": 0}) as run:
        run.hub.wait_reported(lambda r: "monitor" in r, 30)
        body = b"x" * 16_000  # big enough that a backlog builds up behind the one-at-a-time forwarding
        for i in range(300):
            run.hub.send_input("scored", body, {"$.mid": f"m{i}", "$.cdid": "dev1", "$.cmid": "inference"}, wait=False)
        run.hub.wait_output("upstream", 1, 30)
        run.proc.send_signal(signal.SIGTERM)
        assert run.proc.wait(30) == 0, run.log()
        log = run.log()
        backlog = re.search(r"forwarding the (\d+) message\(s\) taken and not yet forwarded", log)
        assert backlog and int(backlog[1]) > 0, log  # messages really were in flight at SIGTERM
        taken = re.findall(r" (m\d+) #\d+ from dev1/inference via scored", log)
        run.hub.wait_until(lambda r: len(r.outputs_on("upstream")) >= len(taken), 15, "the drained messages")
        assert [m.properties["$.mid"] for m in run.hub.outputs_on("upstream")] == taken  # all, once, in order
        assert "drained: every message taken was forwarded" in log
        assert "Traceback" not in log and "InvalidStateError" not in log and "not forwarded" not in log
        # the last report goes out after the last output: the responder's thread may not have taken it yet
        run.hub.wait_reported(lambda r: r["monitor"]["pending"] == 0, 15)


def test_sigterm_without_edgehub_logs_exactly_what_was_not_forwarded(tmp_path: Path) -> None:
    workdir = Path(tempfile.mkdtemp(dir=tmp_path, prefix="broker-"))
    broker_cm = run_mosquitto(tls=True, workdir=workdir)
    broker = broker_cm.__enter__()
    try:
        with run_module("monitor", tmp_path, env={"REPORT_INTERVAL": "0.3", "DRAIN_SECONDS": "1"},
                        desired={"heartbeatSeconds": 0}, broker=broker) as run:
            run.hub.wait_reported(lambda r: "monitor" in r, 30)
            for i in range(300):
                last = run.hub.send_input("scored", b"x" * 16_000, {"$.mid": f"m{i}", "$.cdid": "dev1"}, wait=False)
            last.wait_for_publish()
            run.hub.wait_output("upstream", 1, 30)
            broker_cm.__exit__(None, None, None)  # edgeHub gone with a backlog in the monitor
            time.sleep(0.3)
            started = time.monotonic()
            assert run.terminate(timeout=20) == 0, run.log()
            assert time.monotonic() - started < 10  # inside the runtime's SIGKILL window
            log = run.log()
            left = re.search(r"stopped with (\d+) message\(s\) taken but not forwarded .*?: (.*)", log)
            assert left, log
            ids = re.findall(r"(m\d+) from dev1", left[2])
            taken = re.findall(r" (m\d+) #\d+ from dev1 via scored", log)
            status = re.search(r"'received': (\d+), 'forwarded': (\d+)", log)
            assert status and int(left[1]) == len(ids) == int(status[1]) - int(status[2]) > 0
            assert ids == taken[int(status[2]):]  # exactly the tail that did not go, in order
            assert "Traceback" not in log and "InvalidStateError" not in log
    finally:
        broker_cm.__exit__(None, None, None)
