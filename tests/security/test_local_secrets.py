"""Keys and secrets on the host, attacked from outside: another local user, created here with ``useradd`` and run
with ``runuser``, tries to read the hub stand-in's SQLite store and owner connection string, the device's twins,
module keys and control token, and a manifest carrying a registry password; to use the device's control API; and
to find a key in any process's command line.

The files live in a folder every user may enter (0755), so only edgegen's own modes stand in the way, and each
attack is checked against a control: a plain file next to them that the same user *can* read (the attack works
when there is something to take).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from edgegen.common.sas import parse_connection_string
from edgegen.local.agent import BackoffPolicy
from edgegen.local.control import TOKEN_FILE, ControlClient
from edgegen.local.device import DeviceConfig
from tests.e2e.test_up import cmdlines
from tests.hub.conftest import HubThread
from tests.local.device.harness import DeviceThread, fast_solution, wait_for, write_manifest
from tests.support.net import free_loopback_address

pytestmark = [pytest.mark.integration]

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Outsider:
    """Another local user with no business in our files."""

    name: str

    def run(self, *cmd: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        runuser = shutil.which("runuser") or "runuser"
        return subprocess.run([runuser, "-u", self.name, "--", *cmd], capture_output=True, text=True,
                              timeout=timeout, cwd="/", env={"PATH": "/usr/bin:/bin", "HOME": "/"})

    def can_read(self, path: Path) -> bool:
        return self.run("cat", str(path)).returncode == 0


@pytest.fixture(scope="module")
def outsider() -> Iterator[Outsider]:
    if os.geteuid() != 0:
        pytest.skip("needs root: the attacks run as another local user, made with useradd and run with runuser")
    if not all(shutil.which(tool) for tool in ("useradd", "userdel", "runuser", "curl", "ps")):
        pytest.skip("useradd, userdel, runuser, curl or ps is missing (packages passwd, util-linux, curl, procps)")
    name = f"egsec{secrets.token_hex(4)}"
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/bin/sh", name], check=True,
                   capture_output=True)
    try:
        yield Outsider(name)
    finally:
        subprocess.run(["userdel", name], capture_output=True)


@pytest.fixture
def shared(outsider: Outsider) -> Iterator[Path]:
    """A folder any user may enter, with a control file the outsider can read."""
    base = Path(tempfile.mkdtemp(prefix="edgegen-sec-"))
    try:
        os.chmod(base, 0o755)
        control = base / "public.txt"
        control.write_text("anyone may read this")
        os.chmod(control, 0o644)
        assert outsider.can_read(control), "the outsider cannot even read a public file: the attacks prove nothing"
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _keys_in_argv(keys: set[str]) -> list[str]:
    return [f"{pid}: {cmd[:200]}" for pid, cmd in cmdlines().items() for key in keys if key and key in cmd]


def test_hub_state_is_closed_to_other_users(outsider: Outsider, shared: Path) -> None:
    from edgegen.hub.client import HubClient
    from edgegen.hub.connection import HubTarget

    state = shared / "hub"
    thread = HubThread(state, free_loopback_address(8883, 5671), None, mqtt=True, amqp=False)
    running = thread.start()
    try:
        info = running.info
        client = HubClient(HubTarget(info.connection_string, info.host_name, info.ca_file, "local stand-in", state))
        device_key = parse_connection_string(client.create_device("victim").connection_string)["SharedAccessKey"]
        owner_key = parse_connection_string(info.connection_string)["SharedAccessKey"]
        db = sqlite3.connect(state / "hub.sqlite")
        assert db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0] > 0
        db.close()
        names = sorted(p.name for p in state.iterdir())
        assert {"hub.sqlite", "hub.json", "hub-sessions.db", "ca.key.pem", "server.key.pem"} <= set(names), names
        assert _mode(state) == 0o700
        for name in names:
            if name not in ("ca.pem", "server.pem"):  # certificates are public
                assert _mode(state / name) == 0o600, f"{name} is {_mode(state / name):04o}"
        for name in names:
            assert not outsider.can_read(state / name), f"another user read {name}"
        listing = outsider.run("ls", str(state))
        assert listing.returncode != 0 and "Permission denied" in listing.stderr
        # what the attacker did: take the owner key from the store or hub.json
        grep = outsider.run("grep", "-r", "-l", owner_key, str(shared))
        assert grep.returncode != 0 and "hub.json" not in grep.stdout
        assert _keys_in_argv({owner_key, device_key}) == []
    finally:
        thread.stop()


@pytest.fixture
def device_with_secrets(shared: Path, venv_cache: Path) -> Iterator[tuple[DeviceThread, dict[str, str]]]:
    manifest = fast_solution(REPO, count=3, interval=0.2)
    agent = manifest["modulesContent"]["$edgeAgent"]["properties.desired"]
    scoring_key = secrets.token_urlsafe(24)
    password = secrets.token_urlsafe(24)
    agent["runtime"]["settings"]["registryCredentials"] = {
        "acr": {"address": "example.azurecr.io", "username": "u", "password": password}}
    agent["modules"]["inference"]["env"]["SCORING_KEY"] = {"value": scoring_key}
    config = DeviceConfig(state_dir=shared / "device", manifest=write_manifest(shared / "deployment.json", manifest),
                          solution_dir=REPO, share_site_packages=True, venv_dir=venv_cache,
                          backoff=BackoffPolicy(unit_secs=0.5, max_secs=2, stop_timeout=15))
    with DeviceThread(config) as dev:
        yield dev, {"SCORING_KEY": scoring_key, "registry password": password}


@pytest.fixture(scope="module")
def venv_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("security-venvs")


def test_device_state_and_control_api_are_closed_to_other_users(
        outsider: Outsider, shared: Path, device_with_secrets: tuple[DeviceThread, dict[str, str]]) -> None:
    dev, planted = device_with_secrets
    state = shared / "device"
    assert dev.device is not None
    wait_for(lambda: all(m.get("runtimeStatus") == "running" for m in dev.device.agent.status().values()), 120,
             "modules running")
    twins = (state / "twins.json").read_text()
    assert planted["SCORING_KEY"] in twins and planted["registry password"] in twins  # the secrets are there
    module_keys = {k["key"] for k in json.loads((state / "identities.json").read_text())["modules"].values()}
    token = (state / TOKEN_FILE).read_text().strip()
    assert _mode(state) == 0o700
    for name in ("twins.json", "identities.json", TOKEN_FILE, "device.json", "store.sqlite", "sessions.sqlite",
                 "upstream.sqlite", "upstream.sqlite-wal", "certs/edgehub.key.pem"):
        assert _mode(state / name) == 0o600, f"{name} is {_mode(state / name):04o}"
        assert not outsider.can_read(state / name), f"another user read {name}"

    # and nothing else in the state folder is open either (module venvs and staged models are code, not secrets)
    for folder, dirs, files in os.walk(state):
        here = Path(folder)
        dirs[:] = [d for d in dirs if not (here == state and d in ("venvs", "models"))]
        for name in dirs:
            assert _mode(here / name) == 0o700, f"{here / name} is {_mode(here / name):04o}"
        for name in files:
            path = here / name
            if stat.S_ISREG(path.lstat().st_mode) and not (name.endswith(".pem") and not name.endswith(".key.pem")):
                assert _mode(path) == 0o600, f"{path} is {_mode(path):04o}"

    # the control API: reachable by anyone on the host, usable only with the token
    port = json.loads((state / "device.json").read_text())["controlPort"]
    base = f"http://127.0.0.1:{port}"
    for method, path in (("GET", "/status"), ("GET", "/twins/inference"), ("GET", "/logs/inference"),
                         ("GET", "/messages"), ("POST", "/modules/inference/stop"),
                         ("POST", "/methods/$edgeAgent/ping")):
        for guess in ([], ["-H", "Authorization: Bearer wrong-token"], ["-H", "Authorization: Basic cm9vdDo="]):
            out = outsider.run("curl", "-sS", "-X", method, *guess, "-w", "\n%{http_code}", base + path)
            body, _, status = out.stdout.rpartition("\n")
            assert status == "401", (path, out.stdout, out.stderr)
            assert "control.token" in json.loads(body)["message"]
            assert planted["SCORING_KEY"] not in body
    assert dev.device.agent.status()["inference"]["runtimeStatus"] == "running"  # nothing was stopped

    # the device's own user, through the CLI's client, gets in
    client = ControlClient(state)
    assert set(client.status()["modules"]) == {"sensor", "inference", "monitor"}
    req = urllib.request.Request(base + "/status", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200

    # no key, token or deployment secret on any command line (modules get theirs through env and the workload API)
    assert _keys_in_argv(module_keys | {token, *planted.values()}) == []


def test_manifest_with_a_registry_password_is_closed_to_other_users(outsider: Outsider, shared: Path) -> None:
    from edgegen.pipeline import genconfig

    sol = shared / "solution"
    sol.mkdir()
    os.chmod(sol, 0o755)
    shutil.copy(REPO / "deployment.template.json", sol)
    shutil.copytree(REPO / "modules", sol / "modules", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copytree(REPO / ".models", sol / ".models")
    from edgegen.models.registry import SolutionModels

    old = os.umask(0o022)
    try:
        plain = genconfig(cwd=sol, platform="amd64", environ={}, output_dir="plain", models=SolutionModels(sol, {}))
        # iotedgedev's own template layout: the credentials come from .env through variables
        template = json.loads((sol / "deployment.template.json").read_text())
        agent = template["modulesContent"]["$edgeAgent"]["properties.desired"]
        agent["runtime"]["settings"]["registryCredentials"] = {"acr": {
            "username": "$CONTAINER_REGISTRY_USERNAME", "password": "$CONTAINER_REGISTRY_PASSWORD",
            "address": "$CONTAINER_REGISTRY_SERVER"}}
        (sol / "deployment.template.json").write_text(json.dumps(template, indent=2))
        password = secrets.token_urlsafe(24)
        env = {"CONTAINER_REGISTRY_SERVER": "example.azurecr.io", "CONTAINER_REGISTRY_USERNAME": "u",
               "CONTAINER_REGISTRY_PASSWORD": password}
        with_pw = genconfig(cwd=sol, platform="amd64", environ=env, models=SolutionModels(sol, {}))
    finally:
        os.umask(old)
    secret_manifest = sol / with_pw.output_path
    public_manifest = sol / plain.output_path
    assert password in secret_manifest.read_text()
    assert secret_manifest.read_text() == with_pw.text  # the bytes genconfig promises, only the mode differs
    assert _mode(secret_manifest) == 0o600 and not outsider.can_read(secret_manifest)
    assert _mode(public_manifest) == 0o644 and outsider.can_read(public_manifest)  # no password: the umask's mode


def test_connection_string_file_keeps_the_key_off_the_command_line(outsider: Outsider, shared: Path) -> None:
    """``edgegen device run --connection-string-file`` (and our own test helpers) pass the device key through a
    0600 file or the environment: no process shows it; ``--connection-string`` still works, with a warning."""
    from edgegen.hub.client import HubClient
    from edgegen.hub.connection import HubTarget

    state = shared / "hub"
    thread = HubThread(state, free_loopback_address(8883, 5671), None, mqtt=True, amqp=False)
    running = thread.start()
    procs: list[subprocess.Popen[str]] = []
    try:
        info = running.info
        client = HubClient(HubTarget(info.connection_string, info.host_name, info.ca_file, "local stand-in", state))
        cs = client.create_device("edge1", edge=True).connection_string
        key = parse_connection_string(cs)["SharedAccessKey"]
        cs_file = shared / "edge1.cs"
        cs_file.write_text(cs + "\n")
        os.chmod(cs_file, 0o600)
        assert not outsider.can_read(cs_file)
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("IOTEDGE_DEVICE_CONNECTION_STRING", None)
        common = ["--hub-ca-file", info.ca_file, "--engine", "process"]
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "edgegen", "device", "run", "--connection-string-file", str(cs_file),
             "--state-dir", str(shared / "dev-file"), *common], cwd=shared, env=env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
        wait_for(lambda: (shared / "dev-file" / "waiting.json").exists() or procs[0].poll() is not None, 60,
                 "the device joined and waits for a deployment")
        assert procs[0].poll() is None
        seen_by_outsider = outsider.run("ps", "-eww", "-o", "args")
        assert seen_by_outsider.returncode == 0 and "edgegen device run" in seen_by_outsider.stdout
        assert key not in seen_by_outsider.stdout
        assert _keys_in_argv({key}) == []
        time.sleep(0.5)
        for p in procs:
            p.terminate()
        out, _ = procs[0].communicate(timeout=30)
        assert key not in out and "warning" not in out
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(10)
        thread.stop()
