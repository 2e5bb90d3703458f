"""Where `make peers` puts the real clients, and how tests run them. Tests skip, saying so, when one is absent.

- ``.peers/azure-cli``: the Azure CLI 2.77.0 in its own venv; ``.peers/azure-cli-ext``: the azure-iot
  extension 0.25.0 (the wheel in ``tests/peers/``) with uamqp, used through ``AZURE_EXTENSION_DIR``.
- ``.peers/node/node_modules``: azure-iot-device 1.18.4, azure-iot-device-mqtt 1.16.4, azure-iothub 1.16.6.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

__all__ = [
    "AZ",
    "AZ_EXT",
    "NODE_MODULES",
    "NODE_PACKAGES",
    "Az",
    "az_env",
    "ca_bundle",
    "run_node",
    "skip_reason_az",
    "skip_reason_node",
]

REPO = Path(__file__).resolve().parents[2]
PEERS = REPO / ".peers"
AZ = PEERS / "azure-cli" / "bin" / "az"
AZ_EXT = PEERS / "azure-cli-ext"
NODE_MODULES = PEERS / "node" / "node_modules"
NODE_PACKAGES = ("azure-iot-device", "azure-iot-device-mqtt", "azure-iothub")


def skip_reason_az() -> str | None:
    if not AZ.exists() or not (AZ_EXT / "azure-iot" / "azext_iot").is_dir():
        return "the Azure CLI 2.77.0 + azure-iot 0.25.0 are not installed (make peers)"
    return None


def skip_reason_node() -> str | None:
    if shutil.which("node") is None:
        return "node is not installed (apt-get install nodejs npm); the Node.js SDK tests need it"
    missing = [p for p in NODE_PACKAGES if not (NODE_MODULES / p / "package.json").is_file()]
    if missing:
        return f"the Node.js SDKs are not installed in {NODE_MODULES} ({', '.join(missing)}); run 'make node-peers'"
    return None


def ca_bundle(ca_file: str, where: Path) -> Path:
    """The system CAs (the CLI's certifi) plus the hub's CA: az needs both (its other HTTPS uses the former)."""
    certifi = subprocess.run([str(AZ.parent / "python"), "-c", "import certifi; print(certifi.where())"],
                             capture_output=True, text=True, check=True, timeout=60).stdout.strip()
    bundle = where / "ca-bundle.pem"
    bundle.write_text(Path(certifi).read_text() + "\n" + Path(ca_file).read_text())
    return bundle


def az_env(config_dir: Path, bundle: Path) -> dict[str, str]:
    """An environment for az: its own config folder, no telemetry, no survey, no update checks."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "IOTHUB_"))}
    env.update({"AZURE_EXTENSION_DIR": str(AZ_EXT), "AZURE_CONFIG_DIR": str(config_dir),
                "AZURE_CORE_COLLECT_TELEMETRY": "no", "AZURE_CORE_SURVEY_MESSAGE": "no",
                "AZURE_CORE_NO_COLOR": "true", "AZURE_CORE_ONLY_SHOW_ERRORS": "true",
                "AZURE_EXTENSION_USE_DYNAMIC_INSTALL": "no", "REQUESTS_CA_BUNDLE": str(bundle),
                # uamqp (monitor-events, monitor-feedback, c2d-message send) loads OpenSSL's default verify paths
                "SSL_CERT_FILE": str(bundle)})
    return env


def run_node(script: Path, env: dict[str, str], timeout: float = 120) -> dict[str, Any]:
    """Run a Node script that prints one JSON document; fail with its output when it does not."""
    full = {**os.environ, **env, "NODE_PATH": str(NODE_MODULES)}
    proc = subprocess.run(["node", str(script)], capture_output=True, text=True, timeout=timeout, env=full)
    try:
        out: dict[str, Any] = json.loads(proc.stdout)
    except ValueError:
        raise AssertionError(f"{script.name} printed no JSON (exit {proc.returncode}):\n{proc.stdout}\n"
                             f"{proc.stderr}") from None
    assert "fatal" not in out, f"{script.name} failed: {out.get('fatal')}\n{out.get('stack')}"
    assert proc.returncode == 0, proc.stderr
    return out


class Az:
    """``run = Az(hub_connection_string, az_env(...), cwd)``; ``run("iot", "hub", …)`` is the parsed JSON output,
    ``run(…, ok=False)`` the error text of a command that must fail."""

    def __init__(self, connection_string: str, env: dict[str, str], cwd: Path) -> None:
        self.login, self.env, self.cwd = connection_string, env, cwd

    def __call__(self, *args: str, ok: bool = True) -> Any:
        proc = subprocess.run([str(AZ), *args, "--login", self.login, "-o", "json"], capture_output=True, text=True,
                              env=self.env, cwd=self.cwd, timeout=120)
        if not ok:
            assert proc.returncode != 0, f"az {' '.join(args)} should have failed:\n{proc.stdout}"
            return proc.stderr
        assert proc.returncode == 0, f"az {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}"
        return json.loads(proc.stdout) if proc.stdout.strip() else None
