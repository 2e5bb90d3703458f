"""Benchmark: start-up of the CLI, `edgegen --help` (target: under 60 ms) beside a bare interpreter and iotedgedev.

    .venv/bin/python bench/startup.py [--runs 30]

Each run is a fresh process; prints the median and the minimum of each, alternating the commands so machine load
hits them alike. Also prints the edgegen modules `--help` imports (only the command table: command modules are
imported when their command runs).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support.iotedgedev import IOTEDGEDEV, closed_port, offline_env  # noqa: E402

PY = Path(sys.executable)
EDGEGEN = PY.parent / "edgegen"


def timed(cmd: list[str], env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False, env=env)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, closed_port() as port:
        cmds: dict[str, tuple[list[str], dict[str, str] | None]] = {
            "python -c pass (this venv)": ([str(PY), "-c", "pass"], None),
            "edgegen --help": ([str(EDGEGEN), "--help"], None),
            "edgegen genconfig --help": ([str(EDGEGEN), "genconfig", "--help"], None),
        }
        if IOTEDGEDEV.exists():
            cmds["iotedgedev --help"] = ([str(IOTEDGEDEV), "--help"], offline_env(Path(tmp) / "home", port))
        for cmd, env in cmds.values():  # warm-up: page cache, .pyc files
            timed(cmd, env)
        times: dict[str, list[float]] = {name: [] for name in cmds}
        for _ in range(args.runs):
            for name, (cmd, env) in cmds.items():
                times[name].append(timed(cmd, env))
    print(f"{args.runs} runs each, alternating, fresh process per run")
    for name, ts in times.items():
        print(f"{name:28s}: median {statistics.median(ts) * 1000:6.1f} ms (min {min(ts) * 1000:6.1f})")
    code = "import sys\nfrom edgegen.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n" \
           "print(' '.join(sorted(m for m in sys.modules if m.startswith('edgegen'))))"
    out = subprocess.run([str(PY), "-c", code], capture_output=True, text=True, check=True).stdout.strip().splitlines()
    print(f"edgegen modules imported by --help: {out[-1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
