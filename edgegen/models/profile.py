"""Profile a scoring host under load and recommend ``cpu`` / ``memoryInGB`` (Azure ML's ``deploymentconfig.json``).

For each concurrency level, ``N`` client tasks post the samples (round robin) to ``/score`` for ``duration``
seconds. Figures per level:
- throughput (answered requests per second), latency p50/p90/p99 of the answered requests, errors;
- CPU cores used by the host process: its user+system CPU time over the level divided by the wall time, and the
  CPU time per request (this one does not depend on what else the machine runs);
- peak memory: the host's resident-set high-water mark (``VmHWM``, since it started, so init() counts).

Recommendation: ``cpu`` = the most cores any level used × (1 + margin), ``memoryInGB`` = the peak × (1 + margin),
each rounded up to 0.05 (at least 0.1 CPU and 0.1 GB). The margin is printed and stored with the figures.
The load generator runs in this process; on a small machine it competes with the host for CPU, which lowers the
throughput seen but not the CPU time per request.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import socket
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgegen.common.safeload import InputError, loads_json, read_text
from edgegen.models.errors import Location, ModelError

__all__ = ["LevelResult", "ProfileResult", "load_samples", "recommend", "run_profile", "write_deployment_config"]

MAX_SAMPLES = 10_000
MAX_SAMPLE_BYTES = 16 * 1024 * 1024
GB = 1024**3


@dataclass
class LevelResult:
    concurrency: int
    requests: int
    errors: int
    seconds: float
    throughput: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    cpu_cores: float
    cpu_ms_per_request: float
    peak_memory_bytes: int
    first_error: str | None = None


@dataclass
class ProfileResult:
    host: str
    script: str
    models: list[str]
    samples: int
    margin: float
    levels: list[LevelResult] = field(default_factory=list)
    cpu: float = 0.0
    memory_in_gb: float = 0.0
    deployment_config: str | None = None
    overhead_seconds: float = 0.0  # startup + measurement bookkeeping (wall time minus the levels' time)

    def to_dict(self) -> dict[str, Any]:
        return {"host": self.host, "script": self.script, "models": self.models, "samples": self.samples,
                "levels": [asdict(level) for level in self.levels],
                "recommendation": {"cpu": self.cpu, "memoryInGB": self.memory_in_gb, "margin": self.margin},
                "deploymentConfig": self.deployment_config, "overheadSeconds": round(self.overhead_seconds, 3)}


def load_samples(path: Path) -> list[bytes]:
    """Request bodies, one JSON document per line (blank lines skipped); errors name the line."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ModelError(f"cannot read sample data: {exc.strerror or exc}", location=Location(file=str(path))) from None
    if size > MAX_SAMPLE_BYTES:
        raise ModelError(f"{path} is over {MAX_SAMPLE_BYTES // (1024 * 1024)} MB", location=Location(file=str(path)),
                         hint="a few hundred representative requests are enough")
    out = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                json.loads(line)
            except ValueError as exc:
                raise ModelError(f"not JSON: {exc}", location=Location(file=str(path), line=lineno),
                                 hint="one request body (a JSON document) per line") from None
            out.append(line.strip().encode())
            if len(out) > MAX_SAMPLES:
                raise ModelError(f"more than {MAX_SAMPLES} samples", location=Location(file=str(path), line=lineno))
    if not out:
        raise ModelError(f"{path} holds no samples", location=Location(file=str(path)))
    return out


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(") ", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _peak_rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, math.ceil(q * len(sorted_values)) - 1))
    return sorted_values[index]


async def _drive(url: str, samples: list[bytes], concurrency: int,
                 duration: float) -> tuple[list[float], int, str | None]:
    import aiohttp

    latencies: list[float] = []
    errors = 0
    first_error: str | None = None
    deadline = time.monotonic() + duration
    timeout = aiohttp.ClientTimeout(total=60)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:

        async def worker(offset: int) -> None:
            nonlocal errors, first_error
            i = offset
            while time.monotonic() < deadline:
                body = samples[i % len(samples)]
                i += concurrency
                start = time.perf_counter()
                try:
                    async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as resp:
                        await resp.read()
                        ok = resp.status == 200
                        status = resp.status
                except (aiohttp.ClientError, TimeoutError) as exc:
                    ok, status = False, f"{type(exc).__name__}: {exc}"
                if ok:
                    latencies.append(time.perf_counter() - start)
                else:
                    errors += 1
                    first_error = first_error or f"/score answered {status} for sample {i - concurrency}"

        await asyncio.gather(*(worker(k) for k in range(concurrency)))
    return latencies, errors, first_error


def measure_level(url: str, pid: int, samples: list[bytes], concurrency: int, duration: float) -> LevelResult:
    cpu0, t0 = _cpu_seconds(pid), time.monotonic()
    latencies, errors, first_error = asyncio.run(_drive(url + "/score", samples, concurrency, duration))
    elapsed = time.monotonic() - t0
    cpu = _cpu_seconds(pid) - cpu0
    lat = sorted(latencies)
    answered = len(lat)
    return LevelResult(
        concurrency=concurrency, requests=answered, errors=errors, seconds=round(elapsed, 3),
        throughput=round(answered / elapsed, 2) if elapsed else 0.0,
        p50_ms=round(_percentile(lat, 0.5) * 1000, 3), p90_ms=round(_percentile(lat, 0.9) * 1000, 3),
        p99_ms=round(_percentile(lat, 0.99) * 1000, 3), cpu_cores=round(cpu / elapsed, 3) if elapsed else 0.0,
        cpu_ms_per_request=round(cpu * 1000 / answered, 3) if answered else float("nan"),
        peak_memory_bytes=_peak_rss(pid), first_error=first_error)


def _round_up(value: float, step: float = 0.05, minimum: float = 0.1) -> float:
    return round(max(minimum, math.ceil(value / step - 1e-9) * step), 2)


def recommend(levels: list[LevelResult], margin: float) -> tuple[float, float]:
    """(cpu, memoryInGB) with ``margin`` applied; see the module doc."""
    cores = max((level.cpu_cores for level in levels), default=0.0)
    peak = max((level.peak_memory_bytes for level in levels), default=0)
    return _round_up(cores * (1 + margin)), _round_up(peak * (1 + margin) / GB)


def write_deployment_config(path: Path, cpu: float, memory_in_gb: float) -> Path:
    """Set ``containerResourceRequirements`` in ``path`` (other keys of an existing file are kept)."""
    data: dict[str, Any] = {"computeType": "ACI"}
    if path.is_file():
        try:
            loaded = loads_json(read_text(path, what="deploymentconfig.json"), file=str(path),
                                what="deploymentconfig.json")
        except InputError as exc:
            err = exc.as_error(ModelError)
            err.hint = "fix or delete it; edgegen profile rewrites containerResourceRequirements only"
            raise err from None
        if isinstance(loaded, dict):
            data = loaded
    reqs = data.get("containerResourceRequirements")
    data["containerResourceRequirements"] = {**(reqs if isinstance(reqs, dict) else {}), "cpu": cpu,
                                             "memoryInGB": memory_in_gb}
    from edgegen.generator.atomic import write_text_atomic

    write_text_atomic(path, json.dumps(data, indent=2) + "\n")
    return path


def free_port(address: str) -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


def run_profile(script: Path, model_dir: Path, samples: list[bytes], *, env: dict[str, str], models: list[str],
                concurrency: list[int], duration: float, margin: float, host: str = "auto",
                workdir: Path, address: str = "127.0.0.1", startup_timeout: float = 60.0) -> ProfileResult:
    """Start the scoring host ``host`` (see ``edgegen.models.hosts.host_command``) and measure every concurrency
    level for ``duration`` seconds."""
    from edgegen.models.hosts import host_command, start_host

    if not concurrency or any(c < 1 or c > 256 for c in concurrency):
        raise ModelError("concurrency levels must be between 1 and 256", hint="e.g. --concurrency 1,2,4")
    if not 0.5 <= duration <= 3600:
        raise ModelError("--duration must be between 0.5 and 3600 seconds")
    if not 0 <= margin <= 10:
        raise ModelError("--margin must be between 0 and 10 (0.25 = 25 %)")
    command = host_command(host)
    started = time.monotonic()
    result = ProfileResult(command.name, str(script), models, len(samples), margin)
    with start_host(command, script, model_dir, address, free_port(address), workdir / "host.log", env,
                    timeout=startup_timeout) as running:
        for level in concurrency:
            measured = measure_level(running.url, running.pid, samples, level, duration)
            if measured.requests == 0:
                raise ModelError(f"no request was answered at concurrency {level}: {measured.first_error}",
                                 hint=f"check the samples against the entry script; host log: {running.log}")
            result.levels.append(measured)
    result.overhead_seconds = time.monotonic() - started - sum(level.seconds for level in result.levels)
    result.cpu, result.memory_in_gb = recommend(result.levels, margin)
    return result
