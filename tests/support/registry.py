"""A real registry for tests: Debian's ``docker-registry`` on 127.0.0.1:<free port>, TLS from a test CA,
htpasswd auth (``htpasswd -Bbn`` from apache2-utils), storage in a temp folder.

``trust_for_podman=True`` writes the CA to ``/etc/containers/certs.d/127.0.0.1:<port>/ca.crt`` (needs root) so a
podman engine pushes to it over TLS; the file (and folders this created) are removed on exit.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from edgegen.common.certs import ensure_ca, ensure_server_cert
from tests.support.net import free_port, wait_for_port
from tests.support.proc import stop_process

__all__ = ["RegistryInfo", "RegistryUnavailable", "run_registry"]

REGISTRY_BIN = "/usr/bin/docker-registry"
CERTS_D = Path("/etc/containers/certs.d")


class RegistryUnavailable(RuntimeError):
    pass


@dataclass(frozen=True)
class RegistryInfo:
    host: str  # 127.0.0.1:<port>
    ca_file: Path
    username: str
    password: str

    @property
    def url(self) -> str:
        return f"https://{self.host}"


@contextmanager
def run_registry(
    username: str = "edgeuser", password: str = "s3cret-Pa55", trust_for_podman: bool = True
) -> Iterator[RegistryInfo]:
    binary = shutil.which("docker-registry") or (REGISTRY_BIN if Path(REGISTRY_BIN).exists() else None)
    htpasswd = shutil.which("htpasswd")
    if binary is None or htpasswd is None:
        raise RegistryUnavailable(
            "docker-registry and htpasswd are needed (apt-get install docker-registry apache2-utils)"
        )
    base = Path(tempfile.mkdtemp(prefix="edgegen-registry-"))
    port = free_port()
    host = f"127.0.0.1:{port}"
    ca = ensure_ca(base / "ca", name="edgegen test registry CA")
    pair = ensure_server_cert(ca, base / "ca", "registry", hosts=("localhost", "127.0.0.1"))
    entry = subprocess.run([htpasswd, "-Bbn", username, password], capture_output=True, check=True, text=True).stdout
    (base / "htpasswd").write_text(entry.strip() + "\n", encoding="utf-8")
    (base / "config.yml").write_text(
        "version: 0.1\n"
        "log:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {base}/data\n  delete:\n    enabled: true\n"
        f"http:\n  addr: {host}\n  tls:\n    certificate: {pair.cert_path}\n    key: {pair.key_path}\n"
        f"auth:\n  htpasswd:\n    realm: edgegen-test\n    path: {base}/htpasswd\n",
        encoding="utf-8",
    )
    created: list[Path] = []
    trust_dir = CERTS_D / host
    if trust_for_podman:
        for d in (CERTS_D.parent, CERTS_D, trust_dir):
            if not d.exists():
                d.mkdir()
                created.append(d)
        shutil.copyfile(ca.cert_path, trust_dir / "ca.crt")
    log = open(base / "registry.log", "wb")  # noqa: SIM115 - closed in finally
    proc = subprocess.Popen([binary, "serve", str(base / "config.yml")], stdout=log, stderr=subprocess.STDOUT)
    try:
        try:
            wait_for_port("127.0.0.1", port, timeout=15)
        except TimeoutError:
            raise RegistryUnavailable(
                "docker-registry did not start: " + (base / "registry.log").read_text(errors="replace")[-2000:]
            ) from None
        yield RegistryInfo(host, ca.cert_path, username, password)
    finally:
        stop_process(proc, grace=10)
        log.close()
        if trust_for_podman:
            (trust_dir / "ca.crt").unlink(missing_ok=True)
            for d in reversed(created):  # only when empty: others may have put their own trust there
                with contextlib.suppress(OSError):
                    d.rmdir()
        shutil.rmtree(base, ignore_errors=True)
