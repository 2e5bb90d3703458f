"""Drive the Node.js Azure IoT SDKs (``tests/node/iot_client.js``) from tests: one client process per identity.

Where the SDKs are (``.peers/node``, ``make node-peers``) and when to skip is ``tests.support.peers``'s business.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from tests.support.peers import NODE_MODULES, REPO, skip_reason_node

SCRIPT = REPO / "tests" / "node" / "iot_client.js"

__all__ = ["NODE_MODULES", "NodeClient", "NodeClientError", "require_node_sdk"]


def require_node_sdk() -> str:
    """The node executable; skips the test when node or the pinned SDKs are missing."""
    reason = skip_reason_node()
    if reason is not None:
        pytest.skip(reason)
    return shutil.which("node") or "node"


class NodeClientError(AssertionError):
    pass


class NodeClient:
    """``with NodeClient("module-env", env) as c:`` — ``c.call("getTwin")``, ``c.event("input")``."""

    def __init__(self, mode: str, env: Mapping[str, str], *, ready_timeout: float = 30.0) -> None:
        node = require_node_sdk()
        base = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TMPDIR") if k in os.environ}
        # nothing from this process's IOTEDGE_*/connection settings leaks in: the client sees only ``env``
        full = {**base, "NODE_PATH": str(NODE_MODULES), "NO_PROXY": "*", "no_proxy": "*", **env}
        self.proc = subprocess.Popen([node, str(SCRIPT), mode], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=full, cwd=str(REPO))
        self._replies: dict[int, queue.Queue[dict[str, Any]]] = {}
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self._seen: list[dict[str, Any]] = []
        self._next = 0
        self._lock = threading.Lock()
        self._stderr: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()
        first = self.event(("ready", "connect-failed"), timeout=ready_timeout)
        if first["event"] != "ready":
            self.close()
            raise NodeClientError(f"the Node.js client did not connect: {first.get('error')}\n{self.stderr()}")

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                obj = json.loads(line)
            except ValueError:
                self._stderr.append(f"(stdout) {line.rstrip()}")
                continue
            if "id" in obj:
                with self._lock:
                    self._replies.setdefault(obj["id"], queue.Queue()).put(obj)
            else:
                self.events.put(obj)

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._stderr.append(line.rstrip())

    def stderr(self) -> str:
        return "\n".join(self._stderr[-40:])

    def call(self, op: str, timeout: float = 30.0, **args: Any) -> Any:
        """Run one command; its result, or NodeClientError with the SDK's error."""
        with self._lock:
            self._next += 1
            cid = self._next
            box = self._replies.setdefault(cid, queue.Queue())
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"id": cid, "op": op, **args}) + "\n")
        self.proc.stdin.flush()
        try:
            reply = box.get(timeout=timeout)
        except queue.Empty:
            raise NodeClientError(f"no reply to {op} within {timeout}s\n{self.stderr()}") from None
        if not reply["ok"]:
            raise NodeClientError(f"{op} failed: {reply['error']}\n{self.stderr()}")
        return reply["result"]

    def event(self, kinds: str | tuple[str, ...], timeout: float = 30.0,
              where: Callable[[dict[str, Any]], bool] | None = None) -> dict[str, Any]:
        """The next event of one of ``kinds`` (matching ``where``), including ones that arrived earlier."""
        kinds = (kinds,) if isinstance(kinds, str) else kinds
        for seen in self._seen:
            if seen["event"] in kinds and (where is None or where(seen)):
                self._seen.remove(seen)
                return seen
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise NodeClientError(f"no {kinds} event within {timeout}s\n{self.stderr()}")
            try:
                got = self.events.get(timeout=left)
            except queue.Empty:
                continue
            if got["event"] in kinds and (where is None or where(got)):
                return got
            self._seen.append(got)

    def drained(self, kind: str) -> list[dict[str, Any]]:
        """Every event of ``kind`` received so far (without waiting)."""
        while True:
            try:
                self._seen.append(self.events.get_nowait())
            except queue.Empty:
                break
        out = [e for e in self._seen if e["event"] == kind]
        self._seen = [e for e in self._seen if e["event"] != kind]
        return out

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.close()
                self.proc.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(5)

    def __enter__(self) -> NodeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
