"""Simulated machine telemetry, shaped like Microsoft's SimulatedTemperatureSensor.

Pure: no I/O, no clock of its own (the caller passes ``now``), seeded randomness. The inference module's
``train.py`` loads this file to train its anomaly detector on exactly the data the sensor sends.

Normal behaviour: the machine heats up and cools down over ``period`` steps between 21 and 100 °C; its pressure
follows the temperature (1 bar cold, 10 bar hot); the ambient air stays near 21 °C and 25 % humidity.
Anomalies (rate ``anomaly_rate``): a temperature spike that the pressure does not follow, a pressure drop, or a
humidity jump — each breaks the correlation a detector can learn.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime

__all__ = ["ANOMALY_KINDS", "Reading", "Simulator"]

ANOMALY_KINDS = ("temperature_spike", "pressure_drop", "humidity_jump")

MIN_TEMP = 21.0
MAX_TEMP = 100.0


@dataclass(frozen=True)
class Reading:
    machine_temperature: float
    machine_pressure: float
    ambient_temperature: float
    ambient_humidity: float
    anomaly: str | None  # the injected anomaly kind, None for a normal reading

    def body(self, now: datetime) -> dict[str, object]:
        """The message body, field for field like SimulatedTemperatureSensor's."""
        return {
            "machine": {"temperature": self.machine_temperature, "pressure": self.machine_pressure},
            "ambient": {"temperature": self.ambient_temperature, "humidity": self.ambient_humidity},
            "timeCreated": now.isoformat().replace("+00:00", "Z"),
        }

    def features(self) -> list[float]:
        return [self.machine_temperature, self.machine_pressure, self.ambient_temperature, self.ambient_humidity]


class Simulator:
    def __init__(self, *, seed: int | None = None, anomaly_rate: float = 0.02, period: int = 200) -> None:
        if not 0.0 <= anomaly_rate <= 1.0:
            raise ValueError(f"anomaly_rate must be within 0..1, got {anomaly_rate}")
        if period < 2:
            raise ValueError(f"period must be at least 2 steps, got {period}")
        self._rng = random.Random(seed)
        self.anomaly_rate = anomaly_rate
        self.period = period
        self.step_count = 0

    def reset(self) -> None:
        """Back to a cold machine (the sensor's ``reset`` method)."""
        self.step_count = 0

    def step(self) -> Reading:
        rng = self._rng
        phase = (self.step_count % self.period) / self.period
        self.step_count += 1
        warmth = 0.5 - 0.5 * math.cos(2 * math.pi * phase)  # 0 → 1 → 0 over one period
        temp = MIN_TEMP + (MAX_TEMP - MIN_TEMP) * warmth + rng.gauss(0, 0.5)
        pressure = 1.0 + 9.0 * (temp - MIN_TEMP) / (MAX_TEMP - MIN_TEMP) + rng.gauss(0, 0.05)
        ambient = 21.0 + rng.gauss(0, 0.5)
        humidity = 25.0 + rng.gauss(0, 1.0)
        anomaly = None
        if self.anomaly_rate and rng.random() < self.anomaly_rate:
            anomaly = rng.choice(ANOMALY_KINDS)
            if anomaly == "temperature_spike":
                temp += rng.uniform(20, 40)
            elif anomaly == "pressure_drop":
                pressure *= rng.uniform(0.2, 0.6)
                pressure -= 0.5
            else:
                humidity += rng.uniform(20, 40)
        return Reading(round(temp, 3), round(pressure, 3), round(ambient, 3), round(humidity, 3), anomaly)
