"""The tests' long waits, in one place. Each is an upper bound (a test that gets its answer sooner goes on at once),
never a sleep; raise them on a slow machine with the environment variable named after each, e.g.
``EDGEGEN_TEST_WAIT_DEVICE_START=400 pytest tests/local/device``."""

from __future__ import annotations

import os


def _knob(name: str, default: float) -> float:
    return float(os.environ.get(f"EDGEGEN_TEST_WAIT_{name}", default))


DEVICE_START = _knob("DEVICE_START", 180)  # a local or hub-connected device starting (module venvs, images)
DEVICE_STOP = _knob("DEVICE_STOP", 60)  # a device stopping its modules
HUB_START = _knob("HUB_START", 30)  # the hub stand-in listening (REST, MQTT, AMQP)
LOOP_CALL = _knob("LOOP_CALL", 30)  # one call into a server's event loop from the test thread
LOOP_JOIN = _knob("LOOP_JOIN", 10)  # an event-loop thread ending after its loop stopped
