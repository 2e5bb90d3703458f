"""A real stand-in on a fresh loopback address, run in a background thread with its own event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from edgegen.local.hubstandin.server import HubInfo, HubStandIn
from tests.local.device.conftest import venv_cache  # noqa: F401  (edge devices on the stand-in run modules)
from tests.support.loopthread import LoopThread
from tests.support.net import free_loopback_address
from tests.support.waits import HUB_START


@dataclass
class RunningHub:
    standin: HubStandIn
    info: HubInfo
    loop: asyncio.AbstractEventLoop
    state_dir: Path

    def call(self, fn, *args):  # run fn(*args) on the hub's loop (the backend is single-threaded)
        async def _run():
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(_run(), self.loop).result(10)

    def ensure_module(self, device: str, module: str) -> dict:
        """Make a module identity as edgeAgent does before starting a module (the hub never makes them)."""
        backend = self.standin.backend

        def ensure() -> dict:
            if f"{device}/{module}" not in backend.modules:
                backend.put_module(device, module, {"managedBy": "iotEdge"})
            return backend.get_module(device, module)

        return self.call(ensure)


class HubThread:
    """The stand-in on its own loop (tests.support.loopthread); ``stop`` may be called more than once."""

    def __init__(self, state_dir: Path, address: str, port: int | None, mqtt: bool = False,
                 amqp: bool = False) -> None:
        self.standin = HubStandIn(state_dir, address, port, mqtt=mqtt, amqp=amqp)
        self._loop_thread = LoopThread("hub-loop")
        self.loop = self._loop_thread.loop
        self._running = False

    def start(self) -> RunningHub:
        self._loop_thread.start()
        try:
            self._loop_thread.run(self.standin.__aenter__(), HUB_START)
        except BaseException:
            self._loop_thread.stop()
            raise
        self._running = True
        assert self.standin.info is not None
        return RunningHub(self.standin, self.standin.info, self.loop, self.standin.state_dir)

    def stop(self) -> None:
        try:
            if self._running:
                self._running = False
                self._loop_thread.run(self.standin.__aexit__(None, None, None), HUB_START)
        finally:
            self._loop_thread.stop()


@pytest.fixture
def hub_factory(tmp_path: Path) -> Iterator:
    started: list[HubThread] = []

    def start(state_dir: Path | None = None, address: str | None = None, port: int | None = None,
              mqtt: bool = False, amqp: bool = False) -> tuple[RunningHub, HubThread]:
        addr = address or free_loopback_address()
        thread = HubThread(state_dir or tmp_path / "hub", addr, port, mqtt=mqtt, amqp=amqp)
        started.append(thread)
        return thread.start(), thread

    yield start
    for thread in started:
        thread.stop()


@pytest.fixture
def hub(hub_factory, monkeypatch: pytest.MonkeyPatch) -> RunningHub:
    running, _ = hub_factory()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", running.info.ca_file)
    return running
