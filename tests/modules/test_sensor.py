"""modules/sensor: the pure simulation, and the module as a real process against Mosquitto (TLS)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.modules.conftest import MODULES, load_file, run_module

simulation = load_file("sensor_simulation_under_test", MODULES / "sensor" / "simulation.py")


def test_simulation_is_deterministic_and_shaped_like_simulated_temperature_sensor() -> None:
    a = [simulation.Simulator(seed=3).step() for _ in range(1)]
    b = [simulation.Simulator(seed=3).step() for _ in range(1)]
    assert a == b
    body = a[0].body(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    assert set(body) == {"machine", "ambient", "timeCreated"}
    assert set(body["machine"]) == {"temperature", "pressure"} and set(body["ambient"]) == {"temperature", "humidity"}
    assert body["timeCreated"] == "2026-01-02T03:04:05Z"


def test_simulation_normal_range_anomalies_and_reset() -> None:
    sim = simulation.Simulator(seed=1, anomaly_rate=0.0, period=100)
    readings = [sim.step() for _ in range(100)]
    assert all(r.anomaly is None for r in readings)
    temps = [r.machine_temperature for r in readings]
    assert min(temps) < 25 and max(temps) > 95  # one full heat-up / cool-down cycle
    for r in readings:  # pressure follows temperature
        assert abs(r.machine_pressure - (1 + 9 * (r.machine_temperature - 21) / 79)) < 0.3
    noisy = simulation.Simulator(seed=2, anomaly_rate=0.5)
    kinds = {noisy.step().anomaly for _ in range(200)}
    assert set(simulation.ANOMALY_KINDS) <= kinds and None in kinds
    sim.reset()
    assert sim.step_count == 0
    with pytest.raises(ValueError, match="anomaly_rate"):
        simulation.Simulator(anomaly_rate=1.5)


@pytest.mark.integration
def test_sensor_module_sends_counts_pauses_and_resets(tmp_path: Path) -> None:
    env = {"SEND_INTERVAL": "0.1", "MESSAGE_COUNT": "3", "SEED": "5"}
    with run_module("sensor", tmp_path, env=env) as run:
        first = run.hub.wait_output("temperatureOutput", 3)
        for i, msg in enumerate(first, start=1):
            assert msg.topic.startswith("devices/dev1/modules/sensor/messages/events/%24.on=temperatureOutput&%24.mid=")
            assert msg.properties["$.ct"] == "application/json" and msg.properties["$.ce"] == "utf-8"
            assert msg.properties["sequenceNumber"] == str(i)
            body = msg.json()
            assert isinstance(body["machine"]["temperature"], float)
            assert isinstance(body["ambient"]["humidity"], float)
            assert datetime.fromisoformat(body["timeCreated"].replace("Z", "+00:00")).tzinfo is not None
        assert len({m.properties["batchId"] for m in first}) == 1
        state = run.hub.wait_reported(lambda r: r.get("sensor", {}).get("sent") == 3 and r["sensor"])
        assert state["messageCount"] == 3
        time.sleep(0.5)
        assert len(run.hub.outputs_on("temperatureOutput")) == 3  # MESSAGE_COUNT reached: idle

        status, payload = run.hub.invoke_method("reset", {})
        assert status == 200 and payload == {"reset": True, "previousSent": 3}
        again = run.hub.wait_output("temperatureOutput", 6)[3:]
        assert [m.properties["sequenceNumber"] for m in again] == ["1", "2", "3"]
        assert again[0].properties["batchId"] != first[0].properties["batchId"]
        assert run.hub.invoke_method("nope", {})[0] == 404

        # twin desired: pause, change interval, resume (reset first so there is something to send)
        run.hub.push_desired({"SendData": False, "SendInterval": 0.2})
        run.hub.wait_reported(lambda r: r["sensor"]["sendData"] is False and r["sensor"]["sendInterval"] == 0.2)
        run.hub.invoke_method("reset", {})
        time.sleep(0.6)
        paused_count = len(run.hub.outputs_on("temperatureOutput"))
        assert paused_count == 6
        run.hub.push_desired({"SendData": True})
        resumed = run.hub.wait_output("temperatureOutput", 9)
        assert [m.properties["sequenceNumber"] for m in resumed[6:]] == ["1", "2", "3"]
        assert json.loads(resumed[6].body)["machine"]["temperature"] < 25  # reset → a cold machine again
        assert run.terminate() == 0, run.log()
        assert "stopping after" in run.log()


@pytest.mark.integration
def test_sensor_reports_sent_while_sending_forever(tmp_path: Path) -> None:
    env = {"SEND_INTERVAL": "0.05", "MESSAGE_COUNT": "0", "REPORT_INTERVAL": "0.3", "SEED": "1"}
    with run_module("sensor", tmp_path, env=env) as run:
        first = int(run.hub.wait_reported(lambda r: r.get("sensor", {}).get("sent", 0) >= 3 and r["sensor"])["sent"])
        later = run.hub.wait_reported(lambda r: r["sensor"]["sent"] >= first + 5 and dict(r["sensor"]))
        assert later["messageCount"] == 0
        assert run.terminate() == 0, run.log()
