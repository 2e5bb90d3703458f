"""Running the peer iotedgedev 3.3.9 offline: telemetry off, no first-run notice, every HTTP(S) try refused at once.

iotedgedev reads ``$HOME/.iotedgedev/setting.ini``; with an empty HOME it writes one with ``firsttime = yes``,
prints its privacy notice and turns telemetry on. Its manifest check also downloads a schema from
json.schemastore.org (``urlopen``, which honours ``http_proxy``/``https_proxy``). So every run gets:

* a HOME with ``setting.ini`` saying ``firsttime = no`` and ``collect_telemetry = no``;
* ``http_proxy``/``https_proxy`` pointing at a loopback port that is bound but never listens, so any attempt is
  refused immediately (the schema check then logs that it is skipped, as offline);
* ``no_proxy`` empty, so nothing bypasses that proxy.

``.bench-venvs/iotedgedev`` is installed by ``make peers`` (part of ``make test``) or ``bench/genconfig.py``.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["IOTEDGEDEV", "IOTEDGEDEV_PYTHON", "SETTINGS", "closed_port", "offline_env", "prepare_home"]

REPO = Path(__file__).resolve().parents[2]
IOTEDGEDEV = REPO / ".bench-venvs" / "iotedgedev" / "bin" / "iotedgedev"
IOTEDGEDEV_PYTHON = IOTEDGEDEV.parent / "python"
SETTINGS = "[DEFAULT]\nfirsttime = no\ncollect_telemetry = no\n"


@contextmanager
def closed_port(host: str = "127.0.0.1") -> Iterator[int]:
    """A loopback port that is bound (so no one else takes it) but not listening: connecting is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        yield int(s.getsockname()[1])


def prepare_home(home: Path) -> Path:
    """``home/.iotedgedev/setting.ini`` with telemetry off and the first-run notice already seen."""
    folder = home / ".iotedgedev"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "setting.ini").write_text(SETTINGS)
    return home


def offline_env(home: Path, proxy_port: int, **extra: str) -> dict[str, str]:
    """The whole environment of an iotedgedev run (nothing inherited but PATH)."""
    proxy = f"http://127.0.0.1:{proxy_port}"
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(prepare_home(home)), "LANG": "C.UTF-8",
            "http_proxy": proxy, "https_proxy": proxy, "HTTP_PROXY": proxy, "HTTPS_PROXY": proxy,
            "no_proxy": "", "NO_PROXY": "", **extra}
