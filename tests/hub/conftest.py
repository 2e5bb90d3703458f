"""A real stand-in on a fresh loopback address, run in a background thread with its own event loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from edgegen.local.hubstandin.server import HubInfo, HubStandIn
from tests.local.device.conftest import venv_cache  # noqa: F401  (edge devices on the stand-in run modules)
from tests.support.net import free_loopback_address


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
    def __init__(self, state_dir: Path, address: str, port: int | None, mqtt: bool = False,
                 amqp: bool = False) -> None:
        self.standin = HubStandIn(state_dir, address, port, mqtt=mqtt, amqp=amqp)
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self._stop: asyncio.Event | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._main())

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        try:
            async with self.standin:
                self.ready.set()
                await self._stop.wait()
        except BaseException as exc:  # surfaced to the test
            self.error = exc
            self.ready.set()

    def start(self) -> RunningHub:
        self.thread.start()
        self.ready.wait(30)
        if self.error:
            raise self.error
        assert self.standin.info is not None
        return RunningHub(self.standin, self.standin.info, self.loop, self.standin.state_dir)

    def stop(self) -> None:
        if self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        self.thread.join(30)


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
