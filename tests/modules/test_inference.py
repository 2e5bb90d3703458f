"""modules/inference as a real process: Mosquitto (TLS) + the real device SDK + real HTTP on loopback."""

from __future__ import annotations

import json
import pickle
import re
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.modules.conftest import MODULES, ModuleRun, http, run_module
from tests.support.mosquitto import run_mosquitto
from tests.support.net import free_port

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).parent / "fixtures"
KEY = "s3cret-key"
NORMAL = {"machine": {"temperature": 50.0, "pressure": 4.4}, "ambient": {"temperature": 21.0, "humidity": 25.0},
          "timeCreated": "2026-01-01T00:00:00Z"}
# A hot machine whose pressure stayed low: the pattern the trained model must flag.
ANOMALY = {"machine": {"temperature": 95.0, "pressure": 2.0}, "ambient": {"temperature": 21.0, "humidity": 25.0},
           "timeCreated": "2026-01-01T00:00:01Z"}
JSON_PROPS = {"$.ct": "application/json", "$.ce": "utf-8"}


def running(run: ModuleRun, timeout: float = 30.0) -> dict[str, Any]:
    return run.hub.wait_reported(lambda r: r.get("inference", {}).get("status") == "running" and r["inference"],
                                 timeout)


class Served:
    def __init__(self, run: ModuleRun, port: int) -> None:
        self.run = run
        self.hub = run.hub
        self.url = f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The repo's score.py with its trained model; AZUREML_MODEL_DIR relative (to the module folder)."""
    port = free_port()
    env = {"SCORING_PORT": str(port), "SCORING_KEY": KEY, "MAX_REQUEST_BYTES": "4096", "REPORT_INTERVAL": "0.3",
           "AZUREML_MODEL_DIR": "model"}
    with run_module("inference", tmp_path_factory.mktemp("sample"), env=env) as run:
        running(run)
        yield Served(run, port)
        assert run.terminate() == 0, run.log()


def auth(extra: dict[str, str] | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEY}", **(extra or {})}


# -- messages ------------------------------------------------------------------------------------------------
def test_scores_input1_to_output1_with_properties_carried(sample: Served) -> None:
    props = {"$.mid": "msg-normal", **JSON_PROPS, "$.cdid": "dev1", "$.cmid": "sensor", "sequenceNumber": "7"}
    sample.hub.send_input("input1", json.dumps(NORMAL), props)
    sample.hub.send_input("input1", json.dumps(ANOMALY), {**props, "$.mid": "msg-anomaly", "sequenceNumber": "8"})
    outs = {m.properties["$.cid"]: m for m in sample.hub.wait_output("output1", 2)[-2:]}
    normal, anomaly = outs["msg-normal"], outs["msg-anomaly"]
    assert normal.topic.startswith("devices/dev1/modules/inference/messages/events/%24.on=output1&%24.cid=msg-normal")
    assert normal.properties["$.ct"] == "application/json" and normal.properties["$.ce"] == "utf-8"
    assert normal.properties["sequenceNumber"] == "7"
    assert "$.cdid" not in normal.properties and "$.cmid" not in normal.properties  # edgeHub's, not carried
    body = normal.json()
    assert body["anomaly"] is False and body["score"] < body["threshold"]
    assert body["modelVersion"] == "sensor-anomaly:1" and body["timeCreated"] == NORMAL["timeCreated"]
    assert anomaly.json()["anomaly"] is True and anomaly.json()["score"] > anomaly.json()["threshold"]


def test_bad_json_goes_to_errors_and_module_keeps_serving(sample: Served) -> None:
    before = len(sample.hub.outputs_on("output1"))
    sample.hub.send_input("input1", b"{not json", {"$.mid": "bad-json", **JSON_PROPS})
    sample.hub.send_input("input1", json.dumps(NORMAL), {"$.mid": "after-bad", **JSON_PROPS})
    error = next(m for m in sample.hub.wait_output("errors", 1) if m.properties.get("$.cid") == "bad-json")
    report = error.json()  # a plain script gets the text, as under azmlinfsrv: its json.loads raises
    assert report["error"] == "JSONDecodeError" and "Expecting property name" in report["message"]
    assert report["status"] == 500
    assert report["input"] == "{not json" and report["messageId"] == "bad-json" and report["inputName"] == "input1"
    assert error.properties["$.ct"] == "application/json"
    later = sample.hub.wait_output("output1", before + 1)
    assert any(m.properties.get("$.cid") == "after-bad" for m in later)


def test_run_raising_goes_to_errors_with_truncated_input(sample: Served) -> None:
    long_reading = {"machine": {"temperature": "hot"}, "padding": "x" * 3000}
    sample.hub.send_input("input1", json.dumps(long_reading), {"$.mid": "wrong-shape", **JSON_PROPS, "k": "v"})
    error = sample.hub.wait_until(
        lambda r: next((m for m in r.outputs if m.output == "errors" and m.properties.get("$.cid") == "wrong-shape"),
                       None), what="error for wrong-shape")
    report = error.json()
    assert report["error"] == "ValueError" and "machine.pressure" in report["message"] and report["status"] == 500
    assert len(report["input"]) == 1024 and report["inputTruncated"] is True
    assert error.properties["k"] == "v"


def test_other_input_is_reported_not_dropped_and_twin_can_rename_input(sample: Served) -> None:
    sample.hub.send_input("elsewhere", json.dumps(NORMAL), {"$.mid": "wrong-input", **JSON_PROPS})
    error = sample.hub.wait_until(
        lambda r: next((m for m in r.outputs if m.properties.get("$.cid") == "wrong-input"), None),
        what="wrong-input outcome")
    assert error.output == "errors" and "input 'input1'" in error.json()["message"]
    sample.hub.push_desired({"inputName": "readings"})
    sample.hub.wait_reported(lambda r: r["inference"]["inputName"] == "readings")
    sample.hub.send_input("readings", json.dumps(NORMAL), {"$.mid": "renamed", **JSON_PROPS})
    scored = sample.hub.wait_until(
        lambda r: next((m for m in r.outputs if m.properties.get("$.cid") == "renamed"), None), what="renamed")
    assert scored.output == "output1"
    sample.hub.push_desired({"inputName": "input1"})
    sample.hub.wait_reported(lambda r: r["inference"]["inputName"] == "input1")


def test_counters_and_last_error_in_reported_properties(sample: Served) -> None:
    sample.hub.send_input("input1", b"[1, 2]", {"$.mid": "count-me", **JSON_PROPS})
    state = sample.hub.wait_reported(
        lambda r: r["inference"] if r["inference"]["lastError"] and r["inference"]["counters"]["received"] >= 1
        and r["inference"]["counters"]["received"] == r["inference"]["counters"]["scored"]
        + r["inference"]["counters"]["failed"] else None)
    assert state["modelVersion"] == "sensor-anomaly:1" and state["entryScript"] == "score.py"
    assert state["lastError"]["type"] in ("ValueError", "WrongInput", "JSONDecodeError")


def test_direct_method_score(sample: Served) -> None:
    status, payload = sample.hub.invoke_method("score", ANOMALY)
    assert status == 200 and payload["anomaly"] is True
    status, payload = sample.hub.invoke_method("score", {"data": [[50.0, 4.4, 21.0, 25.0], [95, 2, 21, 25]]})
    assert status == 200 and [r["anomaly"] for r in payload] == [False, True]
    status, payload = sample.hub.invoke_method("score", {"machine": 1})
    assert status == 500 and payload["error"] == "ValueError" and "machine.temperature" in payload["message"]
    status, payload = sample.hub.invoke_method("explode", {})
    assert status == 404


# -- HTTP ----------------------------------------------------------------------------------------------------
def test_http_health_and_score(sample: Served) -> None:
    health = http("GET", sample.url + "/")
    assert health.status == 200 and health.body == b"Healthy"
    reply = http("POST", sample.url + "/score", json.dumps([NORMAL, ANOMALY]).encode(),
                 auth({"Content-Type": "application/json"}))
    assert reply.status == 200 and reply.headers["content-type"].startswith("application/json")
    assert [r["anomaly"] for r in reply.json()] == [False, True]


def test_http_key_required(sample: Served) -> None:
    body = json.dumps(NORMAL).encode()
    missing = http("POST", sample.url + "/score", body, {"Content-Type": "application/json"})
    wrong = http("POST", sample.url + "/score", body, {"Content-Type": "application/json",
                                                       "Authorization": "Bearer nope"})
    assert missing.status == 401 and wrong.status == 401
    assert missing.headers["www-authenticate"] == "Bearer" and "SCORING_KEY" in missing.json()["message"]
    non_ascii = http("POST", sample.url + "/score", body, {"Content-Type": "application/json",
                                                           "Authorization": "Bearer s3crét".encode().decode("latin-1")})
    assert non_ascii.status == 401


def test_http_error_paths(sample: Served) -> None:
    not_utf8 = http("POST", sample.url + "/score", b"\xff{", auth({"Content-Type": "application/json"}))
    assert not_utf8.status == 400 and "UTF-8" in not_utf8.json()["message"]
    raising = http("POST", sample.url + "/score", b'{"machine": 3}', auth({"Content-Type": "application/json"}))
    assert raising.status == 500 and raising.headers["x-ms-run-function-failed"] == "True"
    assert raising.json()["message"] == "An unexpected error occurred in scoring script. Check the logs for more info."
    big = b"[" + b"1," * 3000 + b"1]"
    too_big = http("POST", sample.url + "/score", big, auth({"Content-Type": "application/json"}))
    assert too_big.status == 413 and "MAX_REQUEST_BYTES" in too_big.json()["message"]


def test_http_chunked_body_over_limit_is_413(sample: Served) -> None:
    """No Content-Length: the limit is enforced while reading."""
    import socket

    host, port = sample.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        chunk = b"1," * 1500
        head = (f"POST /score HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\nContent-Type: application/json\r\n"
                "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n").encode()
        frame = b"%x\r\n%s\r\n" % (len(chunk), chunk)
        s.sendall(head + b"%x\r\n[\r\n" % 1 + frame * 3 + b"1\r\n]\r\n0\r\n\r\n")
        data = b""
        while chunk_in := s.recv(65536):
            data += chunk_in
    assert data.startswith(b"HTTP/1.1 413"), data[:200]


def test_http_metrics_prometheus_text(sample: Served) -> None:
    http("POST", sample.url + "/score", json.dumps(NORMAL).encode(), auth({"Content-Type": "application/json"}))
    http("POST", sample.url + "/score", b"\xff", auth({"Content-Type": "application/json"}))
    reply = http("GET", sample.url + "/metrics")
    assert reply.status == 200 and reply.headers["content-type"].startswith("text/plain")
    lines = dict(line.rsplit(" ", 1) for line in reply.body.decode().splitlines() if not line.startswith("#"))
    assert int(lines['inference_http_requests_total{path="/score",code="200"}']) >= 1
    assert int(lines['inference_http_requests_total{path="/score",code="400"}']) >= 1
    assert int(lines["inference_http_errors_total"]) >= 1
    count = int(lines["inference_score_seconds_count"])
    assert count >= 1 and int(lines['inference_score_seconds_bucket{le="+Inf"}']) == count
    assert float(lines["inference_score_seconds_sum"]) > 0
    assert int(lines['inference_messages_total{outcome="received"}']) >= 1


# -- other entry scripts -------------------------------------------------------------------------------------
def test_slow_run_does_not_block_other_requests_raw_bytes_and_raising_run(tmp_path: Path) -> None:
    port = free_port()
    env = {"SCORING_PORT": str(port), "ENTRY_SCRIPT": str(FIXTURES / "echo_score.py"), "REPORT_INTERVAL": "0.3"}
    with run_module("inference", tmp_path, env=env) as run:
        running(run)
        url = f"http://127.0.0.1:{port}"
        slow: list[float] = []

        def slow_call() -> None:
            started = time.monotonic()
            reply = http("POST", url + "/score", b'{"sleep": 1.5}', {"Content-Type": "application/json"})
            assert reply.status == 200
            slow.append(time.monotonic() - started)

        worker = threading.Thread(target=slow_call)
        worker.start()
        time.sleep(0.3)  # the slow run() is now in the thread pool
        started = time.monotonic()
        assert http("GET", url + "/").body == b"Healthy"
        assert http("GET", url + "/metrics").status == 200
        assert time.monotonic() - started < 0.5, "the event loop was blocked by run()"
        worker.join(10)
        assert slow and slow[0] >= 1.4

        # a plain script gets the body as text whatever its content type (azmlinfsrv); not UTF-8 is a 400
        raw = http("POST", url + "/score", b"\x00\x01\xff binary", {"Content-Type": "application/octet-stream"})
        assert raw.status == 400 and "cannot be decoded as UTF-8" in raw.json()["message"]
        text = http("POST", url + "/score", b'{"a": 1}', {"Content-Type": "application/json; charset=utf-8"})
        assert text.json()["type"] == "str" and text.json()["echo"] == {"a": 1}

        raising = http("POST", url + "/score", b'{"raise": "model exploded"}', {"Content-Type": "application/json"})
        assert raising.status == 500 and raising.headers["x-ms-run-function-failed"] == "True"
        run.hub.send_input("input1", b'{"raise": "boom"}', {"$.mid": "r1", **JSON_PROPS})
        error = run.hub.wait_output("errors")[0]
        assert error.json()["error"] == "RuntimeError" and error.json()["message"] == "boom"
        status, payload = run.hub.invoke_method("score", {"raise": "via method"})
        assert status == 500 and payload == {"error": "RuntimeError", "message": "via method"}
        state = run.hub.wait_reported(lambda r: r["inference"]["counters"]["failed"] >= 1 and r["inference"])
        assert state["lastError"]["type"] == "RuntimeError"
        # a message without content type is taken as JSON text; bytes that are not UTF-8 go to errors (400)
        run.hub.send_input("input1", b"\xff\xfe", {"$.mid": "raw"})
        bad = next(m for m in run.hub.wait_output("errors", 2) if m.properties.get("$.cid") == "raw")
        assert bad.json()["error"] == "BadInput" and bad.json()["status"] == 400
        # SIGTERM while run() is busy: the message in hand is finished and sent before the module exits
        run.hub.send_input("input1", b'{"sleep": 1.0}', {"$.mid": "in-flight", **JSON_PROPS})
        time.sleep(0.4)
        assert run.terminate() == 0, run.log()
        assert any(m.properties.get("$.cid") == "in-flight" for m in run.hub.outputs_on("output1")), run.log()
        assert run.hub.reported["inference"]["status"] == "stopped"


def test_failing_init_reports_error_and_exits_non_zero(tmp_path: Path) -> None:
    env = {"SCORING_PORT": str(free_port()), "ENTRY_SCRIPT": str(FIXTURES / "failing_score.py")}
    with run_module("inference", tmp_path, env=env) as run:
        code = run.proc.wait(60)
        assert code == 1, run.log()
        state = run.hub.reported["inference"]
        assert state["status"] == "initFailed"
        assert state["lastError"]["type"] == "FileNotFoundError" and state["lastError"]["where"] == "init"
        assert str(MODULES / "inference" / "model") in state["lastError"]["message"]
        assert "Traceback" in run.log() and "FileNotFoundError" in run.log()


def test_azureml_docs_style_entry_script_runs_unchanged(tmp_path: Path) -> None:
    model_dir = tmp_path / "azureml-models" / "regression" / "1"
    (model_dir / "model").mkdir(parents=True)
    with open(model_dir / "model" / "sklearn_regression_model.pkl", "wb") as f:
        pickle.dump({"coef": [2.0, -1.0, 0.5], "intercept": 10.0}, f)
    port = free_port()
    env = {"SCORING_PORT": str(port), "ENTRY_SCRIPT": str(FIXTURES / "azureml_docs_score.py"),
           "AZUREML_MODEL_DIR": str(model_dir)}
    with run_module("inference", tmp_path, env=env) as run:
        running(run)
        reply = http("POST", f"http://127.0.0.1:{port}/score", json.dumps({"data": [[1, 2, 3], [0, 0, 0]]}).encode(),
                     {"Content-Type": "application/json"})
        assert reply.status == 200 and reply.json() == [11.5, 10.0]
        run.hub.send_input("input1", json.dumps({"data": [[4, 0, 2]]}), {"$.mid": "docs", **JSON_PROPS})
        assert run.hub.wait_output("output1")[0].json() == [19.0]
        assert run.terminate() == 0, run.log()


# -- delivery: order, SIGTERM, a busy HTTP port --------------------------------------------------------------
def echoed(run: ModuleRun) -> list[int]:
    return [m.json()["echo"]["n"] for m in run.hub.outputs_on("output1")]


@pytest.mark.parametrize("window", [1, 64])
def test_output_order_across_a_broker_restart_mid_stream(tmp_path: Path, window: int) -> None:
    """SEND_WINDOW=1: strictly in order across the outage. The default window of 64 pipelines sends; the SDK's paho
    re-sends what was on the wire at the drop after what waited in the SDK, so a consumer restores the order from
    ``outputSequence`` (and drops duplicates, QoS 1 being at-least-once); nothing is lost either way."""
    workdir = Path(tempfile.mkdtemp(dir=tmp_path, prefix="broker-"))
    broker_cm = run_mosquitto(tls=True, workdir=workdir)
    broker = broker_cm.__enter__()
    try:
        env = {"SCORING_PORT": "off", "ENTRY_SCRIPT": str(FIXTURES / "echo_score.py"), "REPORT_INTERVAL": "0.3",
               "SEND_WINDOW": str(window)}
        with run_module("inference", tmp_path, env=env, broker=broker) as run:
            running(run)
            count = 400
            for n in range(count):
                last = run.hub.send_input("input1", json.dumps({"n": n, "sleep": 0.003}),
                                          {"$.mid": f"n{n}", **JSON_PROPS}, wait=False)
            last.wait_for_publish()
            run.hub.wait_output("output1", 20, 30)
            broker_cm.__exit__(None, None, None)  # mid-stream: scored messages now wait for the broker
            time.sleep(1.0)
            broker_cm = run_mosquitto(tls=True, workdir=workdir, host=broker.host)
            broker_cm.__enter__()
            run.hub.wait_until(lambda r: len(set(echoed(run))) >= count, 60, "every message scored and sent")
            assert run.proc.poll() is None
            outs = run.hub.outputs_on("output1")
            # Duplicates are QoS 1's at-least-once: an input redelivered after the reconnect is scored again (a new
            # outputSequence), the responder's own session may replay outputs (the same outputSequence).
            first_seen = list(dict.fromkeys(echoed(run)))
            by_sequence = sorted({int(m.properties["outputSequence"]): m.json()["echo"]["n"] for m in outs}.items())
            restored = list(dict.fromkeys(n for _, n in by_sequence))
            assert restored == list(range(count)), f"outputSequence does not follow the scoring order: {restored}"
            if window == 1:
                assert first_seen == list(range(count)), f"output order changed across the reconnect: {first_seen}"
            else:
                assert sorted(first_seen) == list(range(count))
            assert run.terminate() == 0, run.log()
            assert "Traceback" not in run.log()
    finally:
        broker_cm.__exit__(None, None, None)


def test_messages_taken_before_sigterm_are_scored_and_sent_before_exit(tmp_path: Path) -> None:
    env = {"SCORING_PORT": "off", "ENTRY_SCRIPT": str(FIXTURES / "echo_score.py"), "REPORT_INTERVAL": "0.3"}
    with run_module("inference", tmp_path, env=env) as run:
        running(run)
        for n in range(300):
            run.hub.send_input("input1", json.dumps({"n": n, "sleep": 0.003}), {"$.mid": f"n{n}", **JSON_PROPS},
                               wait=False)
        run.hub.wait_output("output1", 1, 30)
        run.proc.send_signal(signal.SIGTERM)
        assert run.proc.wait(30) == 0, run.log()
        log = run.log()
        backlog = re.search(r"(\d+) message\(s\) to score and (\d+) to send", log)
        assert backlog and int(backlog[1]) + int(backlog[2]) > 0, log  # messages really were in flight
        received = int(re.search(r"stopped: \{'received': (\d+)", log)[1])  # type: ignore[index]
        run.hub.wait_until(lambda r: len(echoed(run)) >= received, 15, "the drained messages")
        assert echoed(run) == list(range(received))  # everything taken, once, in order
        assert "drained: every message taken was scored and sent" in log
        assert "Traceback" not in log and "InvalidStateError" not in log


def test_busy_http_port_is_reported_and_mqtt_scoring_keeps_working(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = {"SCORING_PORT": str(port), "ENTRY_SCRIPT": str(FIXTURES / "echo_score.py"), "REPORT_INTERVAL": "0.3"}
        with run_module("inference", tmp_path, env=env) as run:
            http_state = running(run)["http"]
            assert http_state["status"] == "error" and http_state["port"] == port
            assert f"127.0.0.1:{port}" in http_state["error"] and "SCORING_PORT" in http_state["error"]
            run.hub.send_input("input1", json.dumps({"n": 1}), {"$.mid": "p1", **JSON_PROPS})
            assert run.hub.wait_output("output1")[0].json()["echo"] == {"n": 1}
            status, payload = run.hub.invoke_method("score", {"n": 2})
            assert status == 200 and payload["echo"] == {"n": 2}
            assert run.proc.poll() is None  # still serving, not in a restart loop
            log = run.log()
            assert re.search(rf"ERROR inference: HTTP scoring is off: cannot listen on 127\.0\.0\.1:{port} .*"
                             r"set SCORING_PORT", log), log
            assert "Traceback" not in log
            assert run.terminate() == 0, run.log()
