"""Benchmark: the inference module's HTTP /score against Azure ML's own host (azmlinfsrv), and its MQTT path.

    .venv/bin/python bench/score.py [--seconds 5] [--rounds 3] [--messages 3000]

Both servers host the same trivial entry script (bench/score_entry/score.py) with their default settings (one
worker each), pinned to CPU 0; `wrk` (8 connections, one thread, POST via a Lua script) runs pinned to CPU 1.
They are driven alternately, round after round, and the medians are printed side by side with the ratio.
Our server is the real module process (modules/inference/main.py) connected to a real Mosquitto over TLS, as on a
device. azmlinfsrv comes from PyPI (azureml-inference-server-http) in its own venv, .bench-venvs/azmlinfsrv,
created here when absent; it hard-codes 0.0.0.0, so it is started through its own entry point with the host
constant set to 127.0.0.1 (nothing else changes).
MQTT path: messages/s from input1 through run() to output1 with the module pinned to one core (CPU 0), the
publisher and Mosquitto on the other.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import paho.mqtt.client as mqtt  # noqa: E402

from tests.modules.conftest import module_env  # noqa: E402
from tests.support.iothub_responder import run_responder  # noqa: E402
from tests.support.mosquitto import run_mosquitto  # noqa: E402
from tests.support.net import free_port, wait_for_port  # noqa: E402
from tests.support.proc import stop_process  # noqa: E402

ENTRY = REPO / "bench" / "score_entry" / "score.py"
AZML_VENV = REPO / ".bench-venvs" / "azmlinfsrv"
AZML_PACKAGE = "azureml-inference-server-http==1.5.1"
BODY = json.dumps({"data": [1, 2, 3, 4]})
READING = json.dumps({"machine": {"temperature": 50.0, "pressure": 4.4},
                      "ambient": {"temperature": 21.0, "humidity": 25.0}, "timeCreated": "2026-01-01T00:00:00Z"})
LUA = f"""wrk.method = "POST"
wrk.body = {json.dumps(BODY)}
wrk.headers["Content-Type"] = "application/json"
"""
AZML_LAUNCH = """import sys
import azureml_inference_server_http.amlserver as amlserver
amlserver.DEFAULT_HOST = "127.0.0.1"  # its default is 0.0.0.0; benchmarks stay on loopback
amlserver.run()
"""


def pinned(cpu: int | None, argv: list[str]) -> list[str]:
    return ["taskset", "-c", str(cpu), *argv] if cpu is not None and os.cpu_count() and os.cpu_count() > 1 else argv


def ensure_azmlinfsrv() -> Path:
    python = AZML_VENV / "bin" / "python"
    if not (AZML_VENV / "bin" / "azmlinfsrv").exists():
        print(f"installing {AZML_PACKAGE} into {AZML_VENV} …", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(AZML_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", AZML_PACKAGE], check=True)
    return python


def wait_http(port: int, proc: subprocess.Popen[bytes], what: str, timeout: float = 60.0) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{what} did not answer on port {port}")


@contextmanager
def process(argv: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=log.parent)
        try:
            yield proc
        finally:
            stop_process(proc, grace=15, kill_wait=None)


@contextmanager
def our_module(workdir: Path, cpu: int | None, extra_env: dict[str, str]) -> Iterator[tuple[int, object]]:
    """The real inference module on a real Mosquitto (TLS): yields (http port, responder)."""
    with ExitStack() as stack:
        broker = stack.enter_context(run_mosquitto(tls=True))
        hub = stack.enter_context(run_responder(broker, "dev1", "inference"))
        port = free_port()
        env = module_env(broker, "inference", {"SCORING_PORT": str(port), "ENTRY_SCRIPT": str(ENTRY),
                                               "LOG_LEVEL": "WARNING", "REPORT_INTERVAL": "60", **extra_env})
        argv = pinned(cpu, [sys.executable, str(REPO / "modules" / "inference" / "main.py")])
        proc = stack.enter_context(process(argv, env, workdir / "inference.log"))
        wait_http(port, proc, "the inference module")
        hub.wait_reported(lambda r: r.get("inference", {}).get("status") == "running", 30)
        yield port, hub


@contextmanager
def azmlinfsrv(workdir: Path, cpu: int | None) -> Iterator[int]:
    python = ensure_azmlinfsrv()
    port = free_port()
    env = {**os.environ, "AZUREML_ENTRY_SCRIPT": str(ENTRY), "AZUREML_MODEL_DIR": str(ENTRY.parent)}
    argv = pinned(cpu, [str(python), "-c", AZML_LAUNCH, "--entry_script", str(ENTRY), "--port", str(port)])
    with process(argv, env, workdir / "azmlinfsrv.log") as proc:
        wait_for_port("127.0.0.1", port, timeout=60)
        wait_http(port, proc, "azmlinfsrv")
        yield port


UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def run_wrk(port: int, seconds: int, cpu: int | None, lua: Path) -> dict[str, float]:
    argv = pinned(cpu, ["wrk", "-t1", "-c8", f"-d{int(seconds)}s", "--latency", "-s", str(lua),
                        f"http://127.0.0.1:{port}/score"])
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=seconds + 30).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]

    def pct(p: str) -> float:
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)
        assert m, out
        return float(m.group(1)) * UNITS[m.group(2)]

    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    if bad or errors:
        raise RuntimeError(f"wrk saw failures against port {port}:\n{out}")
    return {"rps": rps, "p50": pct("50"), "p99": pct("99")}


def http_benchmark(seconds: int, rounds: int, workdir: Path) -> dict[str, list[dict[str, float]]]:
    lua = workdir / "post.lua"
    lua.write_text(LUA)
    results: dict[str, list[dict[str, float]]] = {"edgegen inference": [], "azmlinfsrv": []}
    with ExitStack() as stack:
        ours, _ = stack.enter_context(our_module(workdir, 0, {}))
        theirs = stack.enter_context(azmlinfsrv(workdir, 0))
        for port in (ours, theirs):  # warm-up, not counted
            run_wrk(port, 1, 1, lua)
        for r in range(rounds):
            order = [("edgegen inference", ours), ("azmlinfsrv", theirs)]
            for name, port in order if r % 2 == 0 else order[::-1]:
                results[name].append(run_wrk(port, seconds, 1, lua))
                print(f"  round {r + 1} {name:18} {results[name][-1]['rps']:9.0f} req/s", flush=True)
    return results


def mqtt_benchmark(count: int, workdir: Path, entry: Path = ENTRY, body: str = BODY) -> float:
    """Messages/s input1 → run() → output1, module pinned to CPU 0."""
    with ExitStack() as stack:
        broker = stack.enter_context(run_mosquitto(tls=True))
        hub = stack.enter_context(run_responder(broker, "dev1", "inference"))
        env = module_env(broker, "inference", {"ENTRY_SCRIPT": str(entry), "LOG_LEVEL": "WARNING",
                                               "REPORT_INTERVAL": "60", "SCORING_PORT": "off"})
        argv = pinned(0, [sys.executable, str(REPO / "modules" / "inference" / "main.py")])
        stack.enter_context(process(argv, env, workdir / "inference-mqtt.log"))
        hub.wait_reported(lambda r: r.get("inference", {}).get("status") == "running", 30)
        pub = mqtt.Client(client_id=f"bench-{uuid.uuid4().hex[:6]}")
        pub.tls_set_context(ssl.create_default_context(cafile=str(broker.ca_file)))
        pub.max_inflight_messages_set(200)
        pub.connect(broker.host, broker.port)
        pub.loop_start()
        try:
            topic = "devices/dev1/modules/inference/inputs/input1/%24.ct=application%2Fjson&%24.ce=utf-8"
            payload = body.encode()
            started = time.perf_counter()
            for i in range(count):
                pub.publish(topic + f"&%24.mid={i}", payload, qos=1)
            hub.wait_until(lambda r: len(r.outputs) >= count, 300, f"{count} outputs")
            elapsed = time.perf_counter() - started
        finally:
            pub.loop_stop()
            pub.disconnect()
        scored = [m for m in hub.outputs if m.output == "output1"]
        if len(scored) != count:
            raise RuntimeError(f"{count - len(scored)} message(s) did not come out on output1")
        return count / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description="inference module vs azmlinfsrv; MQTT path throughput")
    parser.add_argument("--seconds", type=int, default=5, help="length of each wrk run (default 5)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per server (default 3)")
    parser.add_argument("--messages", type=int, default=3000, help="messages through the MQTT path (default 3000)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-score-") as tmp:
        workdir = Path(tmp)
        print(f"HTTP POST /score, wrk -t1 -c8 -d{args.seconds:g}s, {args.rounds} alternating rounds", flush=True)
        results = http_benchmark(args.seconds, args.rounds, workdir)
        med = {name: {k: statistics.median(r[k] for r in runs) for k in ("rps", "p50", "p99")}
               for name, runs in results.items()}
        print(f"\n{'server':20} {'req/s':>10} {'p50 ms':>9} {'p99 ms':>9}")
        for name, m in med.items():
            print(f"{name:20} {m['rps']:10.0f} {m['p50']:9.2f} {m['p99']:9.2f}")
        ours, theirs = med["edgegen inference"], med["azmlinfsrv"]
        print(f"ratio (ours / azmlinfsrv): req/s {ours['rps'] / theirs['rps']:.2f}x, "
              f"p99 {ours['p99'] / theirs['p99']:.2f}x")
        print(f"\nMQTT path input1 → run() → output1, module on one core, {args.messages} messages (QoS 1)")
        trivial = mqtt_benchmark(args.messages, workdir)
        print(f"  trivial entry script:        {trivial:8.0f} messages/s")
        sample = mqtt_benchmark(args.messages, workdir, REPO / "modules" / "inference" / "score.py", READING)
        print(f"  anomaly model (score.py):    {sample:8.0f} messages/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
