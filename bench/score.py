"""Benchmark: Azure ML's own inference server (azmlinfsrv) against ours (`edgegen serve` and the inference module),
on four entry scripts, with the ceiling (run() alone) beside them; then the module's MQTT path.

    .venv/bin/python bench/score.py [--seconds 5] [--rounds 3] [--messages 3000] [--only trivial,sklearn]

Entry scripts (bench/score_entry/): a trivial plain script, an inference_schema script (typed named inputs), a
@rawhttp script (AMLRequest in, AMLResponse out) and a model-backed one in the style of Azure ML's public
scikit-learn sample (Ridge regression on scikit-learn's diabetes data, trained here; `predict` on two rows).
Each server hosts the script with its default settings (one worker each), pinned to CPU 0; `wrk` (8 connections,
one thread, POST via a Lua script) runs pinned to CPU 1. The servers are driven alternately, round after round, and
the medians are printed side by side with the ratio. The module is the real process (modules/inference/main.py)
connected to a real Mosquitto over TLS, as on a device.
azmlinfsrv comes from PyPI in its own venv (.bench-venvs/azmlinfsrv, `make peers`, created here when absent) and is
bound to 127.0.0.1 through its own entry point. scikit-learn is installed once into .bench-venvs/sklearn (`pip
install --target`) and put on both servers' PYTHONPATH, so both run the same model code.
The ceiling is what one core could do if a server cost nothing: 1 / (mean time of the host's run() call alone,
measured in-process, arguments already decoded). Beside req/s (which other load on a shared machine moves a lot),
each server's CPU time per request is measured (its processes' user + system time over the requests wrk counted);
"overhead" is that minus run() alone, and "CPU ratio" is azmlinfsrv's CPU per request over ours.
MQTT path: messages/s from input1 through run() to output1 with the module pinned to one core (CPU 0), the
publisher and Mosquitto on the other.
"""

from __future__ import annotations

import argparse
import contextlib
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
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import paho.mqtt.client as mqtt  # noqa: E402

from tests.modules.conftest import module_env  # noqa: E402
from tests.support.azmlinfsrv import base_env, install, start_azmlinfsrv, start_serve, wait_ready  # noqa: E402
from tests.support.iothub_responder import run_responder  # noqa: E402
from tests.support.mosquitto import run_mosquitto  # noqa: E402
from tests.support.net import free_port  # noqa: E402
from tests.support.proc import cpu_seconds, stop_process  # noqa: E402

ENTRIES = REPO / "bench" / "score_entry"
SKLEARN_TARGET = REPO / ".bench-venvs" / "sklearn"
SKLEARN = "scikit-learn==1.9.1"
READING = json.dumps({"machine": {"temperature": 50.0, "pressure": 4.4},
                      "ambient": {"temperature": 21.0, "humidity": 25.0}, "timeCreated": "2026-01-01T00:00:00Z"})
SERVERS = ("azmlinfsrv", "edgegen serve", "edgegen module")


@dataclass(frozen=True)
class Scenario:
    name: str
    script: str
    body: str
    needs_model: bool = False


SCENARIOS = (
    Scenario("trivial", "score.py", json.dumps({"data": [1, 2, 3, 4]})),
    Scenario("inference_schema", "schema_score.py", json.dumps({"data": [[1.0, 2.0, 3.0, 4.0]], "scale": 2.0})),
    Scenario("rawhttp", "rawhttp_score.py", json.dumps({"data": [1, 2, 3, 4]})),
    Scenario("sklearn", "sklearn_score.py", json.dumps({"data": [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
                                                                [10, 9, 8, 7, 6, 5, 4, 3, 2, 1]]}), True),
)
CEILING = """import json, sys, time
from pathlib import Path
from amlhost.exchange import Headers, ScoreRequest
from amlhost.inputs import run_arguments
from amlhost.script import load_entry_script
script = load_entry_script(Path(sys.argv[1]), Path(sys.argv[3]) if sys.argv[3] else None)
script.init()
body = sys.argv[2].encode()
request = ScoreRequest("POST", "/score", "", Headers([("Content-Type", "application/json")]), body)
calls = [run_arguments(script, request) for _ in range(20000)]  # decoded beforehand: not part of run()
headers = lambda: {}
for arguments in calls[:2000]:
    script.call(arguments, headers)
started = time.perf_counter()
for arguments in calls[2000:]:
    script.call(arguments, headers)
print((time.perf_counter() - started) / 18000 * 1e6)
"""


def pinned(cpu: int | None, argv: list[str]) -> list[str]:
    return ["taskset", "-c", str(cpu), *argv] if cpu is not None and (os.cpu_count() or 1) > 1 else argv


def ensure_sklearn() -> Path:
    if not (SKLEARN_TARGET / "sklearn").is_dir():
        print(f"installing {SKLEARN} into {SKLEARN_TARGET} …", flush=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--target", str(SKLEARN_TARGET), SKLEARN],
                       check=True)
    return SKLEARN_TARGET


def train_sklearn(model_root: Path, env: dict[str, str]) -> None:
    """model_root/model/sklearn_regression_model.pkl: Ridge on the diabetes data scikit-learn ships."""
    (model_root / "model").mkdir(parents=True, exist_ok=True)
    code = ("import joblib, sys\nfrom sklearn.datasets import load_diabetes\nfrom sklearn.linear_model import Ridge\n"
            "X, y = load_diabetes(return_X_y=True)\njoblib.dump(Ridge(alpha=0.5).fit(X, y), sys.argv[1])\n")
    subprocess.run([sys.executable, "-c", code, str(model_root / "model" / "sklearn_regression_model.pkl")],
                   env=env, check=True)


UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (gunicorn: the master and its worker)."""
    found = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        for child in task.read_text().split():
            found += process_tree(int(child))
    return found


def tree_cpu(pid: int) -> float:
    total = 0.0
    for each in process_tree(pid):
        with contextlib.suppress(OSError):  # gone meanwhile
            total += cpu_seconds(each)
    return total


def run_wrk(port: int, seconds: int, cpu: int | None, lua: Path, pid: int | None = None) -> dict[str, float]:
    """wrk's req/s and latency percentiles; with ``pid``, also the server's CPU µs per request (its processes'
    user + system time over the requests served): a figure other load on the machine hardly moves."""
    argv = pinned(cpu, ["wrk", "-t1", "-c8", f"-d{int(seconds)}s", "--latency", "-s", str(lua),
                        f"http://127.0.0.1:{port}/score"])
    cpu_before = tree_cpu(pid) if pid else 0.0
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=seconds + 30).stdout
    cpu_used = tree_cpu(pid) - cpu_before if pid else 0.0
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]

    def pct(p: str) -> float:
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)
        assert m, out
        return float(m.group(1)) * UNITS[m.group(2)]

    if re.search(r"Non-2xx or 3xx responses: (\d+)", out) or re.search(r"Socket errors: (.*)", out):
        raise RuntimeError(f"wrk saw failures against port {port}:\n{out}")
    return {"rps": rps, "p50": pct("50"), "p99": pct("99"), "cpu_us": cpu_used / requests * 1e6 if pid else 0.0}


@contextmanager
def servers(scenario: Scenario, workdir: Path, model_root: Path | None,
            env: dict[str, str]) -> Iterator[dict[str, tuple[int, int]]]:
    """The three servers for one scenario, each pinned to CPU 0; yields name → (port, pid)."""
    script = ENTRIES / scenario.script
    with ExitStack() as stack:
        ports: dict[str, int] = {}
        waiting = []
        ports["azmlinfsrv"] = free_port()
        peer = start_azmlinfsrv(install(), script, ports["azmlinfsrv"], workdir, workdir / f"{scenario.name}-azml.log",
                                model_root, env=env)
        subprocess.run(["taskset", "-a", "-p", "-c", "0", str(peer.pid)], capture_output=True, check=False)
        stack.callback(stop_process, peer, 15)
        waiting.append(("azmlinfsrv", peer))
        ports["edgegen serve"] = free_port()
        serve = start_serve(script, ports["edgegen serve"], workdir, workdir / f"{scenario.name}-serve.log",
                            model_root, env=env, extra_args=("--log-level", "warning"))
        subprocess.run(["taskset", "-a", "-p", "-c", "0", str(serve.pid)], capture_output=True, check=False)
        stack.callback(stop_process, serve, 15)
        waiting.append(("edgegen serve", serve))
        broker = stack.enter_context(run_mosquitto(tls=True))
        hub = stack.enter_context(run_responder(broker, "dev1", "inference"))
        ports["edgegen module"] = free_port()
        module_extra = {"SCORING_PORT": str(ports["edgegen module"]), "ENTRY_SCRIPT": str(script),
                        "LOG_LEVEL": "WARNING", "REPORT_INTERVAL": "60", **env}
        if model_root is not None:
            module_extra["AZUREML_MODEL_DIR"] = str(model_root)
        with open(workdir / f"{scenario.name}-module.log", "wb") as log:
            module = subprocess.Popen(pinned(0, [sys.executable, str(REPO / "modules" / "inference" / "main.py")]),
                                      env=module_env(broker, "inference", module_extra), stdout=log,
                                      stderr=subprocess.STDOUT, cwd=workdir)
        stack.callback(stop_process, module, 15)
        waiting.append(("edgegen module", module))
        for name, proc in waiting:
            wait_ready(ports[name], proc, f"{name} ({scenario.name})")
        hub.wait_reported(lambda r: r.get("inference", {}).get("status") == "running", 30)
        yield {name: (ports[name], proc.pid) for name, proc in waiting}


def ceiling_us(scenario: Scenario, model_root: Path | None, env: dict[str, str]) -> float:
    argv = pinned(0, [sys.executable, "-c", CEILING, str(ENTRIES / scenario.script), scenario.body,
                      str(model_root) if model_root else ""])
    out = subprocess.run(argv, env={**os.environ, **env}, capture_output=True, text=True, check=True).stdout
    return float(out.strip().splitlines()[-1])


def http_benchmark(scenario: Scenario, seconds: int, rounds: int, workdir: Path, model_root: Path | None,
                   env: dict[str, str]) -> dict[str, dict[str, float]]:
    lua = workdir / f"{scenario.name}.lua"
    lua.write_text(f'wrk.method = "POST"\nwrk.body = {json.dumps(scenario.body)}\n'
                   'wrk.headers["Content-Type"] = "application/json"\n')
    results: dict[str, list[dict[str, float]]] = {name: [] for name in SERVERS}
    with servers(scenario, workdir, model_root, env) as running:
        for name in SERVERS:  # warm-up, not counted
            run_wrk(running[name][0], 1, 1, lua)
        for r in range(rounds):
            order = list(SERVERS) if r % 2 == 0 else list(reversed(SERVERS))
            for name in order:
                port, pid = running[name]
                results[name].append(run_wrk(port, seconds, 1, lua, pid))
                last = results[name][-1]
                print(f"  {scenario.name:16} round {r + 1} {name:15} {last['rps']:8.0f} req/s "
                      f"{last['cpu_us']:6.0f} CPU µs/req", flush=True)
    return {name: {k: statistics.median(run[k] for run in runs) for k in ("rps", "p50", "p99", "cpu_us")}
            for name, runs in results.items()}


def mqtt_benchmark(count: int, workdir: Path, entry: Path, body: str) -> float:
    """Messages/s input1 → run() → output1, module pinned to CPU 0."""
    with ExitStack() as stack:
        broker = stack.enter_context(run_mosquitto(tls=True))
        hub = stack.enter_context(run_responder(broker, "dev1", "inference"))
        env = module_env(broker, "inference", {"ENTRY_SCRIPT": str(entry), "LOG_LEVEL": "WARNING",
                                               "REPORT_INTERVAL": "60", "SCORING_PORT": "off"})
        with open(workdir / "inference-mqtt.log", "wb") as log:
            proc = subprocess.Popen(pinned(0, [sys.executable, str(REPO / "modules" / "inference" / "main.py")]),
                                    env=env, stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
        stack.callback(stop_process, proc, 15)
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
    parser = argparse.ArgumentParser(description="azmlinfsrv vs edgegen serve vs the inference module; MQTT path")
    parser.add_argument("--seconds", type=int, default=5, help="length of each wrk run (default 5)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per server (default 3)")
    parser.add_argument("--messages", type=int, default=3000, help="messages through the MQTT path (default 3000)")
    parser.add_argument("--only", default="", help="comma-separated scenarios (default: all), 'none' for MQTT only")
    args = parser.parse_args()
    chosen = [s for s in SCENARIOS if not args.only or s.name in args.only.split(",")]
    summary: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-score-") as tmp:
        workdir = Path(tmp)
        env = base_env()
        if any(s.needs_model for s in chosen):
            env["PYTHONPATH"] = str(ensure_sklearn())
            train_sklearn(workdir / "sklearn-model", env)
        print(f"HTTP POST /score, wrk -t1 -c8 -d{args.seconds}s, {args.rounds} alternating rounds; servers on CPU 0",
              flush=True)
        for scenario in chosen:
            model_root = workdir / "sklearn-model" if scenario.needs_model else None
            med = http_benchmark(scenario, args.seconds, args.rounds, workdir, model_root, env)
            run_us = ceiling_us(scenario, model_root, env)
            theirs = med["azmlinfsrv"]
            summary.append(f"\n{scenario.name} ({scenario.script}); run() alone: {run_us:.1f} µs → ceiling "
                           f"{1e6 / run_us:,.0f} req/s on one core")
            summary.append(f"{'server':16} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'CPU µs/req':>10} "
                           f"{'overhead µs':>11} {'req/s ratio':>11} {'p99 ratio':>9} {'CPU ratio':>9}")
            for name in SERVERS:
                m = med[name]
                ratio = "" if name == "azmlinfsrv" else f"{m['rps'] / theirs['rps']:10.2f}x"
                p99 = "" if name == "azmlinfsrv" else f"{m['p99'] / theirs['p99']:8.2f}x"
                cpu = "" if name == "azmlinfsrv" else f"{theirs['cpu_us'] / m['cpu_us']:8.2f}x"
                summary.append(f"{name:16} {m['rps']:8.0f} {m['p50']:8.2f} {m['p99']:8.2f} {m['cpu_us']:10.0f} "
                               f"{m['cpu_us'] - run_us:11.0f} {ratio:>11} {p99:>9} {cpu:>9}")
            print("\n".join(summary[-(len(SERVERS) + 2):]), flush=True)
        print("\n== summary ==" + "\n".join(summary))
        if args.messages:
            print(f"\nMQTT path input1 → run() → output1, module on one core, {args.messages} messages (QoS 1)")
            trivial = mqtt_benchmark(args.messages, workdir, ENTRIES / "score.py", SCENARIOS[0].body)
            print(f"  trivial entry script:        {trivial:8.0f} messages/s")
            sample = mqtt_benchmark(args.messages, workdir, REPO / "modules" / "inference" / "score.py", READING)
            print(f"  anomaly model (score.py):    {sample:8.0f} messages/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
