"""The scoring core's HTTP server on loopback, against what a hostile or broken world sends: deep JSON, non-ASCII
credentials, slow clients, a run() that never ends or exits, huge bodies. Each gets a clear answer or a closed
connection, and the server keeps serving."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from amlhost.http import HttpOptions, SettingError

from tests.modules.amlhost_support import hosted, isolated, scorer_for
from tests.modules.azml_diff import Call, send

pytestmark = pytest.mark.integration

SCRIPT = """
import json, sys, time
def init():
    pass
def run(raw_data):
    data = json.loads(raw_data)
    if isinstance(data, dict):
        if "sleep" in data:
            time.sleep(data["sleep"])
        if data.get("exit"):
            sys.exit(1)
        if data.get("nan"):
            return float("nan")
        if "size" in data:
            return {"size": len(raw_data)}
    return {"ok": True}
"""
SCHEMA = """
from inference_schema.parameter_types.standard_py_parameter_type import StandardPythonParameterType
from inference_schema.schema_decorators import input_schema
def init():
    pass
@input_schema("data", StandardPythonParameterType([1]))
def run(data):
    return data
"""
JSON = (("Content-Type", "application/json"),)
OK = Call("ok", "POST", "/score", 200, b"{}", JSON)


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[Path]:
    with isolated():
        yield tmp_path


def raw_exchange(address: tuple[str, int], data: bytes, timeout: float = 10.0) -> bytes:
    with socket.create_connection(address, timeout=timeout) as sock:
        sock.sendall(data)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        return received


def test_deep_json_is_answered_and_serving_goes_on(folder: Path) -> None:
    deep = b"[" * 50_000 + b"]" * 50_000
    with hosted(scorer_for(folder, SCRIPT)) as address:
        plain = send(address, Call("deep", "POST", "/score", 500, deep, JSON))
        assert plain.status == 500 and plain.header("x-ms-run-function-failed") == "True"  # the script's json.loads
        assert send(address, OK).status == 200
    with hosted(scorer_for(folder, SCHEMA, "schema.py")) as address:
        schema = send(address, Call("deep", "POST", "/score", 400, deep, JSON))
        assert schema.status == 400 and b"nested too deeply" in schema.body
        assert send(address, Call("ok", "POST", "/score", 200, b'{"data": [1]}', JSON)).status == 200


def test_non_ascii_authorization_is_a_401(folder: Path) -> None:
    with hosted(scorer_for(folder, SCRIPT), HttpOptions(key="s3cret")) as address:
        for value in (b"Bearer s\xc3\xa9cret", b"Bearer \xff\xfe", b"\xe2\x82\xac"):
            head = (b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAuthorization: " + value
                    + b"\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
            assert raw_exchange(address, head).startswith(b"HTTP/1.1 401"), value
        good = send(address, Call("key", "POST", "/score", 200, b"{}", (*JSON, ("Authorization", "Bearer s3cret"))))
        assert good.status == 200


def test_slow_clients_are_cut_off_without_holding_up_others(folder: Path) -> None:
    with hosted(scorer_for(folder, SCRIPT), HttpOptions(client_timeout=0.5)) as address:
        headers_slow = socket.create_connection(address, timeout=10)
        headers_slow.sendall(b"POST /score HTTP/1.1\r\nHost: x\r\n")  # and never the rest
        body_slow = socket.create_connection(address, timeout=10)
        body_slow.sendall(b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                          b"Content-Length: 100\r\n\r\n{\"a\"")
        started = time.monotonic()
        assert send(address, OK).status == 200  # answered at once, while both hang
        assert time.monotonic() - started < 0.4
        assert headers_slow.recv(1024) == b""  # closed by the server after the timeout
        answer = body_slow.recv(4096)
        assert answer.startswith(b"HTTP/1.1 408") and b"CLIENT_TIMEOUT_SECONDS" in answer
        assert time.monotonic() - started < 5
        headers_slow.close()
        body_slow.close()


def test_run_timeout_answers_500_and_the_host_recovers(folder: Path) -> None:
    with hosted(scorer_for(folder, SCRIPT), HttpOptions(timeout_ms=200)) as address:
        started = time.monotonic()
        slow = send(address, Call("slow", "POST", "/score", 500, b'{"sleep": 1.0}', JSON))
        assert slow.status == 500 and json.loads(slow.body) == {"message": "Scoring timeout after 200 ms"}
        assert slow.header("x-ms-run-function-failed") == "True" and time.monotonic() - started < 0.9
        assert send(address, Call("health", "GET", "/", 200)).status == 200  # the loop is free meanwhile
        assert send(address, OK).status == 200  # once the slow run() is over, scoring goes on


def test_run_exiting_or_returning_nan_keeps_the_host_serving(folder: Path) -> None:
    with hosted(scorer_for(folder, SCRIPT)) as address:
        exited = send(address, Call("exit", "POST", "/score", 500, b'{"exit": true}', JSON))
        assert exited.status == 500 and exited.header("x-ms-run-function-failed") == "True"
        nan = send(address, Call("nan", "POST", "/score", 500, b'{"nan": true}', JSON))
        assert nan.status == 500 and b"NaN or Infinity" in nan.body
        assert send(address, OK).status == 200


def test_no_body_limit_by_default_and_413_when_set(folder: Path) -> None:
    big = json.dumps({"size": 1, "pad": "x" * 5_000_000}).encode()
    scorer = scorer_for(folder, SCRIPT)
    with hosted(scorer) as address:  # azmlinfsrv has no limit: neither have we, unless asked
        reply = send(address, Call("big", "POST", "/score", 200, big, JSON))
        assert reply.status == 200 and json.loads(reply.body) == {"size": len(big)}
    with hosted(scorer, HttpOptions(max_body=1000)) as address:
        declared = send(address, Call("big", "POST", "/score", 413, big, JSON))
        assert declared.status == 413 and b"MAX_REQUEST_BYTES" in declared.body
        chunked = send(address, Call("big", "POST", "/score", 413, big[:5000], JSON, chunked=True))
        assert chunked.status == 413
        assert send(address, Call("small", "POST", "/score", 200, b'{"size": 1}', JSON)).status == 200


def test_head_and_metrics(folder: Path) -> None:
    with hosted(scorer_for(folder, SCRIPT)) as address:
        head = send(address, Call("head", "HEAD", "/", 200))
        assert head.status == 200 and head.body == b"" and head.header("content-length") == "7"
        send(address, OK)
        metrics = send(address, Call("metrics", "GET", "/metrics", 200)).body.decode()
        assert 'inference_http_requests_total{path="/score",code="200"} 1' in metrics
        assert "inference_score_seconds_count 1" in metrics


@pytest.mark.parametrize(("name", "value"), [("MAX_REQUEST_BYTES", "lots"), ("SCORING_TIMEOUT_MS", "0"),
                                             ("CLIENT_TIMEOUT_SECONDS", "-1")])
def test_settings_are_checked(name: str, value: str) -> None:
    with pytest.raises(SettingError, match=name):
        HttpOptions.from_environ({name: value})
