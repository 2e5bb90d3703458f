"""A real Docker-API engine for tests: ``podman system service`` on a unix socket in a temp folder.

Self-contained: vfs storage, run/tmp dirs and the events log live in the temp folder; as root the service runs in
a private mount namespace (``unshare --mount``) with fresh tmpfs on /run, /dev/shm, /var/tmp and
/var/lib/containers, so podman's fixed-path lock, cache and run files never touch the host. Everything is removed
on exit. Where unshare is not allowed it runs without the namespace (a few podman files may then remain).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.proc import stop_process

__all__ = ["PodmanUnavailable", "run_podman_service"]

# Mount points podman writes to regardless of --root/--runroot (lock in /dev/shm, blob cache, netavark run dir).
_PRIVATE = ("/run", "/dev/shm", "/var/tmp", "/var/lib/containers")


class PodmanUnavailable(RuntimeError):
    pass


def _can_unshare() -> bool:
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return False
    probe = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", "mount -t tmpfs tmpfs /dev/shm"],
        capture_output=True,
        timeout=10,
    )
    return probe.returncode == 0


@contextmanager
def run_podman_service(timeout: float = 30.0, driver: str = "vfs") -> Iterator[str]:
    """Start the service; yields its ``DOCKER_HOST`` (``unix:///…/podman.sock``).

    ``driver="overlay"`` (kernel overlayfs) makes builds on a real base image fast; vfs copies every layer whole.
    """
    podman = shutil.which("podman")
    if podman is None:
        raise PodmanUnavailable("podman is not installed (apt-get install podman)")
    base = Path(tempfile.mkdtemp(prefix="edgegen-podman-"))
    sock = base / "podman.sock"
    (base / "tmp").mkdir()
    (base / "storage.conf").write_text(
        f'[storage]\ndriver = "{driver}"\nrunroot = "{base}/run"\ngraphroot = "{base}/root"\n', encoding="utf-8"
    )
    (base / "containers.conf").write_text(
        "[containers]\n"
        "default_ulimits = []\n"  # crun/runc cannot set the default rlimits in this sandbox
        "[engine]\n"
        'runtime = "runc"\n'  # crun fails on the hybrid cgroup v1 hierarchy here; runc enforces limits
        'cgroup_manager = "cgroupfs"\n'
        'events_logger = "file"\n'
        f'events_logfile_path = "{base}/events.log"\n'
        f'tmp_dir = "{base}/libpod"\n'
        "[network]\n"
        f'network_config_dir = "{base}/networks"\n',
        encoding="utf-8",
    )
    env = {
        **os.environ,
        "CONTAINERS_STORAGE_CONF": str(base / "storage.conf"),
        "CONTAINERS_CONF": str(base / "containers.conf"),
        "TMPDIR": str(base / "tmp"),
    }
    env.pop("DOCKER_HOST", None)
    service = [
        podman,
        "--root", f"{base}/root",
        "--runroot", f"{base}/run",
        "--storage-driver", driver,
        "--cgroup-manager", "cgroupfs",
        "--events-backend", "file",
        "--tmpdir", f"{base}/libpod",
        "system", "service", "--time", "0", f"unix://{sock}",
    ]  # fmt: skip
    created_varlib = False
    if _can_unshare():
        if not Path("/var/lib/containers").exists():
            Path("/var/lib/containers").mkdir(parents=True)
            created_varlib = True
        mounts = " && ".join(f"mount -t tmpfs tmpfs {p}" for p in _PRIVATE)
        cmd = ["unshare", "--mount", "--propagation", "private", "sh", "-c", f'{mounts} && exec "$@"', "sh", *service]
    else:
        cmd = service
    log = open(base / "service.log", "wb")  # noqa: SIM115 - closed in finally
    # cwd: conmon writes an empty file "oom" into its working directory when a container hits its memory limit
    # (a stray top-level "oom" got committed that way when the service ran from the checkout)
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=base)
    try:
        _wait_ready(sock, proc, base, timeout)
        yield f"unix://{sock}"
    finally:
        stop_process(proc, grace=15)
        log.close()
        shutil.rmtree(base, ignore_errors=True)
        if created_varlib:  # only the empty mount point this made (podman wrote into the tmpfs above it)
            with contextlib.suppress(OSError):
                Path("/var/lib/containers").rmdir()


def _wait_ready(sock: Path, proc: subprocess.Popen[bytes], base: Path, timeout: float) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise PodmanUnavailable(
                f"podman system service exited with {proc.returncode}: "
                + (base / "service.log").read_text(errors="replace")[-2000:]
            )
        if sock.exists():
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                try:
                    s.connect(str(sock))
                    s.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
                    if b"OK" in s.recv(1024):
                        return
                except OSError:
                    pass
        time.sleep(0.1)
    raise PodmanUnavailable(f"podman system service did not answer on {sock} within {timeout}s")
