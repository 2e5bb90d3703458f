"""Differential tests: Azure ML's own inference server (azmlinfsrv 1.5.1) against our host, same scripts, same requests.

Each entry script in ``azml_scripts/`` is hosted three times, side by side: by azmlinfsrv (its own venv, bound to
127.0.0.1), by ``edgegen serve``, and by the inference module on a real Mosquitto with the real device SDK. Every
request below goes to azmlinfsrv and to each of ours; status, headers (``x-ms-*`` included) and body are compared
(``azml_diff``) and every difference is listed. A difference passes only when ``ALLOWED`` names it: the intended
differences, each documented in docs/modules.md under its id. An entry no difference needs fails the test too, so
the list cannot go stale. Each request also states the status azmlinfsrv should give, so a broken peer cannot make
the comparison vacuous.

The peer is installed by ``make peers`` (tests/support/azmlinfsrv-requirements.txt); without it these tests skip.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.modules.azml_diff import Allowed, Call, Difference, compare, send, unexplained, unused
from tests.modules.conftest import MODULES, run_module
from tests.support.azmlinfsrv import (
    base_env,
    listening_on,
    peer_python,
    start_azmlinfsrv,
    start_serve,
    wait_ready,
)
from tests.support.mosquitto import mosquitto_path
from tests.support.net import free_port
from tests.support.proc import stop_process

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SCRIPTS = Path(__file__).parent / "azml_scripts"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "modules.md"
JSON = (("Content-Type", "application/json"),)
SCRIPT_FAILED = b'{"message": "An unexpected error occurred in scoring script. Check the logs for more info."}'


def post(name: str, value: object, expect: int, target: str = "/score",
         headers: tuple[tuple[str, str], ...] = JSON) -> Call:
    return Call(name, "POST", target, expect, json.dumps(value).encode(), headers)


DEEP = b"[" * 50_000 + b"]" * 50_000
MULTIPART = (b"--XyZ\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n"
             b"--XyZ\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\n"
             b"Content-Type: image/png\r\n\r\n\x89PNG\r\n\x1a\nDATA\r\n--XyZ--\r\n")

# Requests every script gets: routes, methods, request ids, swagger.
def common(swagger2: int = 200) -> tuple[Call, ...]:
    return tuple(Call(c.name, c.method, c.target, swagger2, c.body, c.headers) if c.name in ("swagger", "swagger-head")
                 else c for c in COMMON)


COMMON = (
    Call("get-root", "GET", "/", 200),
    Call("head-root", "HEAD", "/", 200),
    Call("options-root", "OPTIONS", "/", 200),
    Call("post-root", "POST", "/", 405, b"x"),
    Call("unknown-path", "GET", "/nope", 404),
    Call("trailing-slash", "GET", "/score/", 404),
    Call("put-score", "PUT", "/score", 405, b"{}", JSON),
    Call("options-score", "OPTIONS", "/score", 200),
    Call("swagger", "GET", "/swagger.json", 200),
    Call("swagger-3", "GET", "/swagger.json?version=3", 200),
    Call("swagger-3.0", "GET", "/swagger.json?version=3.0", 200),
    Call("swagger-3.1", "GET", "/swagger.json?version=3.1", 200),
    Call("swagger-unknown", "GET", "/swagger.json?version=9", 404),
    Call("swagger-head", "HEAD", "/swagger.json", 200),
    Call("swagger-post", "POST", "/swagger.json", 405, b"{}", JSON),
    Call("metrics", "GET", "/metrics", 404),
    Call("request-id-given", "GET", "/", 200, headers=(("x-request-id", "rid-1"), ("x-ms-request-id", "legacy-1"))),
    Call("client-request-id", "GET", "/", 200, headers=(("x-ms-client-request-id", "cid-1"), ("TraceId", "t-1"))),
    Call("request-id-too-long", "GET", "/", 431, headers=(("x-request-id", "r" * 101),)),
    Call("client-id-too-long", "GET", "/", 431, headers=(("x-ms-client-request-id", "c" * 101),)),
)

PLAIN = (
    post("echo", {"x": [1, 2.5, "é"], "nested": {"ok": True}}, 200),
    post("list", [1, 2, 3], 200),
    post("return-str", {"return": "str"}, 200),
    post("return-json-str", {"return": "json-str"}, 200),
    post("return-none", {"return": "none"}, 200),
    post("return-np-float", {"return": "np-float"}, 200),
    post("return-bytes", {"return": "bytes"}, 500),
    post("return-numpy", {"return": "numpy"}, 500),
    post("return-np-int", {"return": "np-int"}, 500),
    post("return-set", {"return": "set"}, 500),
    post("return-nan", {"return": "nan"}, 200),
    post("run-raises", {"return": "raise"}, 500),
    post("run-exits", {"return": "exit"}, 500),
    post("run-interrupted", {"return": "interrupt"}, 500),
    post("env", {"return": "env"}, 200),
    post("headers", {"return": "headers"}, 200, headers=(*JSON, ("X-Custom", "1"), ("X-Custom", "2"),
                                                          ("x-ms-client-request-id", "cid-2"), ("X_Under", "no"))),
    post("request-ids", {"return": "echo"}, 200, headers=(*JSON, ("x-request-id", "rid-3"))),
    Call("text-plain", "POST", "/score", 500, b"hello", (("Content-Type", "text/plain"),)),
    Call("no-content-type", "POST", "/score", 200, b'{"return": "echo", "a": 1}'),
    Call("form", "POST", "/score", 200, b"a=1&b=2", (("Content-Type", "application/x-www-form-urlencoded"),)),
    Call("empty-body", "POST", "/score", 200, b""),
    Call("not-utf8", "POST", "/score", 400, b"\xff\xfe{", JSON),
    Call("deep-json", "POST", "/score", 500, DEEP, JSON),
    Call("chunked", "POST", "/score", 200, b'{"return": "echo", "chunked": true}', JSON, chunked=True),
    Call("get-query", "GET", "/score?return=echo&a=1&a=2&b=x&c=null&d=%7B%22k%22%3A1%7D&e=", 200),
    Call("get-env", "GET", "/score?return=env", 200),
    Call("percent-path", "GET", "/sc%6Fre?return=echo", 200),
    Call("head-score", "HEAD", "/score", 405),
)

STANDARD = (
    post("valid", {"data": [[1.0, 2.0], [3.0, 4.0]], "scale": 2.0, "label": "y"}, 200,
         headers=(*JSON, ("X-Agent", "curl"))),
    post("default-used", {"data": [[1, 2]], "scale": 1}, 200),
    post("int-for-float", {"data": [[1.0]], "scale": 3}, 200),
    post("extra-key", {"data": [[1.0]], "scale": 1.0, "unknown": 1}, 200),
    post("missing-input", {"data": [[1.0]]}, 400),
    post("wrong-type", {"data": [[1.0]], "scale": "big"}, 500),
    post("not-an-object", [1, 2], 400),
    post("vendor-json", {"data": [[1.0]], "scale": 1.0}, 200, headers=(("Content-Type", "application/vnd.x+json"),)),
    post("text-plain", {"data": [[1.0]], "scale": 1.0}, 415, headers=(("Content-Type", "text/plain"),)),
    Call("no-content-type", "POST", "/score", 415, b'{"data": [[1.0]], "scale": 1.0}'),
    Call("empty-body", "POST", "/score", 400, b"", JSON),
    Call("bad-json", "POST", "/score", 400, b'{"data": [[1.0]', JSON),
    Call("whitespace-body", "POST", "/score", 400, b"   ", JSON),
    Call("not-utf8", "POST", "/score", 500, b'{"data": "\xff"}', JSON),
    Call("deep-json", "POST", "/score", 500, DEEP, JSON),
    Call("get-query", "GET", "/score?data=%5B%5B1.0%2C2.0%5D%5D&scale=2.0", 200),
    Call("get-missing", "GET", "/score", 400),
    Call("head-score", "HEAD", "/score", 405),
)

NUMPY = (
    post("valid", {"data": [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]}, 200),
    post("ints-cast", {"data": [[1, 2, 3]], "mode": "dtype"}, 200),
    post("wrong-shape", {"data": [[1.0, 2.0]]}, 500),
    post("wrong-dims", {"data": [1.0, 2.0, 3.0]}, 500),
    post("return-array", {"data": [[1.0, 2.0, 3.0]], "mode": "array"}, 500),
    post("not-a-list", {"data": "abc"}, 500),
)

PANDAS = (
    post("valid", {"frame": [{"temperature": 20.0, "pressure": 4.0, "site": "a"},
                             {"temperature": 30.0, "pressure": 5.0, "site": "b"}]}, 200),
    post("return-frame", {"frame": [{"temperature": 20.0, "pressure": 4.0, "site": "a"}], "mode": "frame"}, 500),
    post("missing-column", {"frame": [{"temperature": 20.0}]}, 500),
    post("not-records", {"frame": {"temperature": 1}}, 500),
)

RAW_CONTRIB = (
    Call("get", "GET", "/score?a=1&a=2&b=%C3%A9", 200),
    post("post-json", {"k": [1, 2]}, 200, headers=(*JSON, ("X-Custom", "1"), ("X-Custom", "2"))),
    Call("post-text", "POST", "/score", 200, "ünïcode".encode(), (("Content-Type", "text/plain; charset=utf-8"),)),
    Call("post-form", "POST", "/score", 200, b"a=1&b=two", (("Content-Type", "application/x-www-form-urlencoded"),)),
    Call("post-files", "POST", "/score", 200, MULTIPART, (("Content-Type", "multipart/form-data; boundary=XyZ"),)),
    Call("chunked", "POST", "/score", 200, b'{"chunked": 1}', JSON, chunked=True),
    Call("status-and-headers", "POST", "/score?action=status", 201, b"{}", JSON),
    Call("text-response", "POST", "/score?action=text", 200, b"{}", JSON),
    Call("binary-response", "POST", "/score?action=binary", 200, b"{}", JSON),
    Call("5xx-response", "POST", "/score?action=fail", 503, b"{}", JSON),
    Call("none-response", "POST", "/score?action=none", 202, b"{}", JSON),
    Call("run-raises", "POST", "/score?action=raise", 500, b"{}", JSON),
    Call("not-utf8", "POST", "/score", 200, b"\xff\xfe", (("Content-Type", "application/octet-stream"),)),
    Call("head-score", "HEAD", "/score", 200),
)

RAW_SERVER = (
    Call("env", "GET", "/score?env=1", 200),
    Call("binary-echo", "POST", "/score", 200, bytes(range(256)), (("Content-Type", "application/octet-stream"),)),
)


@dataclass(frozen=True)
class Hosted:
    script: str
    calls: tuple[Call, ...]
    model_dir: bool = True
    user_swagger: bool = False  # ships swagger3.json in the app root


HOSTED = (
    Hosted("plain_score", COMMON + PLAIN),
    Hosted("schema_standard", COMMON + STANDARD),
    Hosted("schema_numpy", common(swagger2=404) + NUMPY),  # its output sample mixes types: no swagger 2
    Hosted("schema_pandas", COMMON + PANDAS),
    Hosted("rawhttp_contrib", COMMON + RAW_CONTRIB),
    Hosted("rawhttp_server", COMMON + RAW_SERVER, model_dir=False, user_swagger=True),
)

ALLOWED = (
    Allowed("server-version", "*", "*", "header x-ms-server-version",
            "we name our host (edgegen-inference/<version>), azmlinfsrv itself (azmlinfsrv/1.5.1)"),
    Allowed("metrics-route", "*", "metrics", "*", "GET /metrics is ours (Prometheus text); azmlinfsrv has no route"),
    Allowed("unsendable-result-message", "*", "return-bytes|return-numpy|return-np-int|return-set|return-array|"
            "return-frame", "body",
            "a value JSON cannot carry is a 500 on both; our message says what run() returned and what to return"),
    Allowed("nan-is-an-error", "plain_score", "return-nan", "*",
            "azmlinfsrv sends the non-JSON tokens NaN/Infinity with 200; we answer 500 with a clear message"),
    Allowed("base-exception-answered", "plain_score", "run-exits|run-interrupted", "*",
            "run() raising SystemExit/KeyboardInterrupt kills azmlinfsrv's worker (gunicorn's HTML 500); we answer "
            "the usual 500 JSON with x-ms-* headers and keep serving"),
    Allowed("client-error-is-400", "schema_standard", "not-utf8|deep-json", "status|body",
            "a body that is not UTF-8 or nested too deeply is the client's mistake: 400 with the reason; "
            "azmlinfsrv answers 500 (its JSON parser raised outside its checks)"),
    Allowed("module-sets-model-dir", "rawhttp_server", "env", "body",
            "the module always exports AZUREML_MODEL_DIR (default: its model/ folder); edgegen serve and azmlinfsrv "
            "leave it unset when no model folder is given", hosts="module"),
)

USER_SWAGGER = {"openapi": "3.0.0", "info": {"title": "shipped by the user", "version": "7"}, "paths": {}}
HOSTS = ("azmlinfsrv", "serve", "module")


@dataclass
class Hosts:
    address: dict[str, dict[str, tuple[str, int]]]  # script → host → (address, port)
    modules: dict[str, object]  # script → ModuleRun
    logs: dict[str, dict[str, Path]]


def _peer_or_skip() -> Path:
    python = peer_python()
    if python is None:
        pytest.skip("the azmlinfsrv peer is not installed: `make peers` puts azureml-inference-server-http 1.5.1 "
                    "into .bench-venvs/azmlinfsrv (it needs PyPI)")
    if mosquitto_path() is None:
        pytest.skip("mosquitto is not installed (apt-get install mosquitto)")
    return python


def _log(path: Path) -> str:
    return path.read_text(errors="replace")[-4000:] if path.is_file() else "(no log)"


@pytest.fixture(scope="module")
def hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hosts]:
    python = _peer_or_skip()
    root = tmp_path_factory.mktemp("azml")
    model = root / "model"
    model.mkdir()
    (model / "weights.txt").write_text("1\n")
    found = Hosts({}, {}, {})
    with ExitStack() as stack:
        waiting = []
        for hosted in HOSTED:
            app, logs = root / "apps" / hosted.script, root / "logs" / hosted.script
            app.mkdir(parents=True)
            logs.mkdir(parents=True)
            if hosted.user_swagger:
                (app / "swagger3.json").write_text(json.dumps(USER_SWAGGER))
            script, model_dir = SCRIPTS / f"{hosted.script}.py", model if hosted.model_dir else None
            ports = {host: free_port() for host in HOSTS}
            found.address[hosted.script] = {host: ("127.0.0.1", port) for host, port in ports.items()}
            found.logs[hosted.script] = {host: logs / f"{host}.log" for host in HOSTS}
            peer = start_azmlinfsrv(python, script, ports["azmlinfsrv"], app, logs / "azmlinfsrv.log", model_dir)
            stack.callback(stop_process, peer, 15)
            serve = start_serve(script, ports["serve"], app, logs / "serve.log", model_dir)
            stack.callback(stop_process, serve, 15)
            env = base_env({"SCORING_PORT": str(ports["module"]), "ENTRY_SCRIPT": str(script),
                            "REPORT_INTERVAL": "60"})
            if model_dir is not None:
                env["AZUREML_MODEL_DIR"] = str(model_dir)
            run = stack.enter_context(run_module("inference", logs, env=env, cwd=app))
            found.modules[hosted.script] = run
            found.logs[hosted.script]["module"] = run.log_path
            waiting += [(hosted.script, "azmlinfsrv", peer), (hosted.script, "serve", serve),
                        (hosted.script, "module", run.proc)]
        for script, host, proc in waiting:
            try:
                wait_ready(found.address[script][host][1], proc, f"{host} hosting {script}")
            except (RuntimeError, TimeoutError) as exc:
                raise AssertionError(f"{exc}; log:\n{_log(found.logs[script][host])}") from None
        yield found


def test_every_host_listens_on_loopback_only(hosts: Hosts) -> None:
    for script, addresses in hosts.address.items():
        for host, (_, port) in addresses.items():
            assert listening_on(port) == {"127.0.0.1"}, f"{host} ({script}) listens on {listening_on(port)}"


@pytest.mark.parametrize("host", ["serve", "module"])
def test_same_answers_as_azmlinfsrv(hosts: Hosts, host: str) -> None:
    differences: list[Difference] = []
    broken: list[str] = []
    compared = 0
    for hosted in HOSTED:
        for call in hosted.calls:
            theirs = send(hosts.address[hosted.script]["azmlinfsrv"], call)
            ours = send(hosts.address[hosted.script][host], call)
            if theirs.status != call.expect:
                broken.append(f"{hosted.script} {call.name}: azmlinfsrv answered {theirs.status}, the test expects "
                              f"{call.expect}: {theirs.body[:200]!r}")
            differences += compare(hosted.script, call, theirs, ours)
            compared += 1
    report = "\n".join(d.line() for d in differences)
    print(f"\n{compared} requests, {len(differences)} differences ({host} vs azmlinfsrv):\n{report}")
    assert not broken, "the scenarios are not what they claim:\n" + "\n".join(broken)
    stray = unexplained(differences, ALLOWED, host)
    assert not stray, "differences nobody allowed:\n" + "\n".join(d.line() for d in stray)
    stale = unused(differences, ALLOWED, host)
    assert not stale, f"allow-list entries no difference needed (remove them): {[a.id for a in stale]}"
    assert compared > 150


def test_allow_list_is_documented() -> None:
    docs = DOCS.read_text()
    missing = [a.id for a in ALLOWED if f"`{a.id}`" not in docs]
    assert not missing, f"docs/modules.md does not explain these allowed differences: {missing}"


def test_script_raising_keeps_every_host_serving(hosts: Hosts) -> None:
    """After run() raised SystemExit and KeyboardInterrupt, ours still answer (azmlinfsrv restarts its worker)."""
    exits = next(c for c in PLAIN if c.name == "run-exits")
    for host in ("serve", "module"):
        address = hosts.address["plain_score"][host]
        assert send(address, exits).status == 500
        echo = send(address, next(c for c in PLAIN if c.name == "echo"))
        assert echo.status == 200 and json.loads(echo.body)["echo"]["x"] == [1, 2.5, "é"]


def test_messages_and_method_decode_like_http(hosts: Hosts) -> None:
    """The module scores an MQTT message and a direct-method payload with the same decoding as an HTTP body."""
    run = hosts.modules["schema_standard"]
    peer = hosts.address["schema_standard"]["azmlinfsrv"]
    valid = next(c for c in STANDARD if c.name == "default-used")
    expected = send(peer, valid).body
    assert valid.body is not None
    run.hub.send_input("input1", valid.body, {"$.mid": "schema-1", "$.ct": "application/json", "$.ce": "utf-8"})
    run.hub.send_input("input1", valid.body, {"$.mid": "schema-no-ct"})  # no content type: taken as JSON
    missing = next(c for c in STANDARD if c.name == "missing-input")
    assert missing.body is not None
    run.hub.send_input("input1", missing.body, {"$.mid": "schema-missing", "$.ct": "application/json"})
    outs = {m.properties["$.cid"]: m for m in run.hub.wait_output("output1", 2)}
    assert outs["schema-1"].body == expected and outs["schema-no-ct"].body == expected
    assert outs["schema-1"].properties["$.ct"] == "application/json"
    error = run.hub.wait_output("errors", 1)[0].json()
    peer_error = json.loads(send(peer, missing).body)
    assert error["status"] == 400 and error["error"] == "BadInput" and error["message"] == peer_error["message"]
    status, payload = run.hub.invoke_method("score", json.loads(valid.body))
    assert status == 200 and payload == json.loads(expected)
    status, payload = run.hub.invoke_method("score", json.loads(missing.body))
    assert status == 400 and payload == {"error": "BadInput", "message": peer_error["message"]}

    raw = hosts.modules["rawhttp_contrib"]
    raw.hub.send_input("input1", b'{"k": 1}', {"$.mid": "raw-1", "$.ct": "application/json"})
    out = raw.hub.wait_output("output1", 1)[0].json()
    assert out["method"] == "POST" and out["json"] == {"k": 1} and out["is_json"] is True


def test_init_failure_stops_every_host(tmp_path: Path) -> None:
    """init() raising: azmlinfsrv's gunicorn gives up (exit 3), ours exit 1 with the traceback; none serves."""
    python = _peer_or_skip()
    script = SCRIPTS / "init_fails.py"
    with ExitStack() as stack:
        peer = start_azmlinfsrv(python, script, free_port(), tmp_path, tmp_path / "azmlinfsrv.log", tmp_path)
        stack.callback(stop_process, peer, 15)
        serve = start_serve(script, free_port(), tmp_path, tmp_path / "serve.log", tmp_path)
        stack.callback(stop_process, serve, 15)
        logs = tmp_path / "module"
        logs.mkdir()
        run = stack.enter_context(run_module("inference", logs, env=base_env({
            "SCORING_PORT": str(free_port()), "ENTRY_SCRIPT": str(script), "AZUREML_MODEL_DIR": str(tmp_path)})))
        for name, proc, log in (("azmlinfsrv", peer, tmp_path / "azmlinfsrv.log"),
                                ("serve", serve, tmp_path / "serve.log"), ("module", run.proc, run.log_path)):
            try:
                code = proc.wait(90)
            except subprocess.TimeoutExpired:
                raise AssertionError(f"{name} kept running after init() failed:\n{_log(log)}") from None
            text = log.read_text(errors="replace")
            assert code != 0, f"{name} exited 0 after init() failed:\n{text}"
            assert "FileNotFoundError" in text and "no model.pkl under" in text, f"{name}:\n{text}"
        serve_log = (tmp_path / "serve.log").read_text()
        assert "Traceback" in serve_log and re.search(r"error: init\(\) of init_fails\.py failed", serve_log)
        assert run.hub.reported["inference"]["status"] == "initFailed"


def test_peer_templates_are_ours(repo_root: Path) -> None:
    """The swagger templates in the core are azmlinfsrv's, byte for byte."""
    python = peer_python()
    if python is None:
        pytest.skip("the azmlinfsrv peer is not installed (make peers)")
    site = next((python.parent.parent / "lib").glob("python*/site-packages/azureml_inference_server_http/server"))
    for name in ("swagger2_template.json", "swagger3_template.json"):
        ours = MODULES / "inference" / "amlhost" / "templates" / name
        assert ours.read_bytes() == (site / name).read_bytes(), name
