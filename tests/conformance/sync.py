"""Copy a conformance folder (``../shared/conformance``) over this one and rewrite SHA256SUMS.

    python tests/conformance/sync.py /path/to/conformance

Files are copied byte for byte; files that are gone upstream are removed here. Review ``git diff`` afterwards.
"""

from __future__ import annotations

import hashlib
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
OURS = {"PROVENANCE.md", "SHA256SUMS", "sync.py"}


def sums(root: Path) -> str:
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.relative_to(root).parts[0] not in OURS
                   and "__pycache__" not in p.parts)
    return "".join(f"{hashlib.sha256(p.read_bytes()).hexdigest()}  ./{p.relative_to(root).as_posix()}\n"
                   for p in files)


def main(source: str) -> int:
    src = Path(source).resolve()
    if not (src / "README.md").is_file() or not (src / "routing").is_dir():
        print(f"{src} does not look like a conformance folder (no README.md and routing/)", file=sys.stderr)
        return 2
    for line in sums(HERE).splitlines():
        rel = line.split("  ", 1)[1]
        if not (src / rel).is_file():
            (HERE / rel).unlink()
    for p in src.rglob("*"):
        if p.is_file():
            dst = HERE / p.relative_to(src)
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(p, dst)
    (HERE / "SHA256SUMS").write_text(sums(HERE))
    print(f"copied {src} into {HERE}; SHA256SUMS rewritten")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
