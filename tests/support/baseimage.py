"""An offline stand-in for the module Dockerfiles' base image ``python:3.11-slim-bookworm``.

Made from Debian packages with ``mmdebstrap`` (bookworm's python3 3.11, python3-venv, passwd for useradd,
ca-certificates, python-is-python3 for ``python``, and libstdc++6, which the real image has through apt and
which binary wheels such as numpy's and onnxruntime's link against), using this machine's own apt sources; no
image registry is contacted. The root filesystem tarball is built once per machine and cached in
``$EDGEGEN_CACHE`` (default ``~/.cache/edgegen``)``/base/``; ``import_base(docker_host)`` imports it into an engine
and tags it with the names the Dockerfiles use, so ``FROM`` resolves from the local store without pulling.
On a connected machine nothing here is needed: the engine pulls the real base.

    python -m tests.support.baseimage    # build the cached rootfs (what `make test` does before pytest)
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from pathlib import Path

__all__ = ["BASE_TAGS", "BaseImageUnavailable", "ensure_rootfs", "import_base", "rootfs_path"]

BASE_TAGS = ("docker.io/library/python:3.11-slim-bookworm",)
PACKAGES = ("python3", "python3-venv", "python-is-python3", "passwd", "ca-certificates", "libstdc++6")
_EXCLUDE = ("/usr/share/doc/*", "/usr/share/man/*", "/usr/share/locale/*", "/usr/share/info/*")
VERSION = "2"  # bump when PACKAGES or the options change


class BaseImageUnavailable(RuntimeError):
    pass


def rootfs_path() -> Path:
    cache = Path(os.environ.get("EDGEGEN_CACHE") or Path.home() / ".cache" / "edgegen")
    return cache / "base" / f"bookworm-python3-v{VERSION}.tar"


def ensure_rootfs(timeout: float = 600) -> Path:
    """The cached rootfs tarball, built with mmdebstrap when missing (about 30 s; safe across processes)."""
    target = rootfs_path()
    if target.is_file():
        return target
    mmdebstrap = shutil.which("mmdebstrap")
    if mmdebstrap is None:
        raise BaseImageUnavailable("mmdebstrap is not installed (apt-get install mmdebstrap)")
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.is_file():
            return target
        partial = target.with_suffix(".partial.tar")
        options = [f"--dpkgopt=path-exclude={p}" for p in _EXCLUDE]
        options.append("--dpkgopt=path-include=/usr/share/doc/*/copyright")
        cmd = [mmdebstrap, "--quiet", "--variant=essential", f"--include={','.join(PACKAGES)}", *options, "bookworm",
               str(partial)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        if proc.returncode != 0:
            partial.unlink(missing_ok=True)
            raise BaseImageUnavailable(f"mmdebstrap failed ({proc.returncode}): {proc.stderr[-1500:]}")
        os.replace(partial, target)
    return target


def import_base(docker_host: str) -> str:
    """Import the rootfs into the engine at ``docker_host`` (unless there already) and tag it; its id."""
    import docker

    api = docker.APIClient(base_url=docker_host, version="1.41", timeout=600)
    try:
        for tag in BASE_TAGS:
            try:
                return str(api.inspect_image(tag)["Id"])
            except docker.errors.ImageNotFound:
                pass
        rootfs = ensure_rootfs()
        events = api.import_image(src=str(rootfs), changes=['CMD ["python3"]', "ENV LANG=C.UTF-8"])
        image_id = ""
        for line in str(events).splitlines():
            if '"id"' in line or '"status":"sha256:' in line:
                import json

                data = json.loads(line)
                image_id = str(data.get("id") or data.get("status") or image_id)
        if not image_id.startswith("sha256:"):
            raise BaseImageUnavailable(f"the engine did not import the base image: {str(events)[-500:]}")
        for tag in BASE_TAGS:
            repo, _, version = tag.rpartition(":")
            api.tag(image_id, repo, version)
        return image_id
    finally:
        api.close()


if __name__ == "__main__":
    try:
        print(ensure_rootfs())
    except BaseImageUnavailable as exc:
        sys.exit(f"base image: {exc}")
