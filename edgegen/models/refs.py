"""Model references as users write them: ``name``, ``name:version``, ``name:version@sha256:<hex>``.

Names follow Azure ML's rule (a letter or digit, then letters, digits, ``-``, ``_``; at most 255) minus the
period, which would make ``${MODELS.<name>}`` placeholders ambiguous. Versions are positive integers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from edgegen.models.errors import Location, ModelError
from edgegen.models.modelpath import NAME

__all__ = ["ModelRef", "check_name", "parse_ref"]

_REF = re.compile(r"^(?P<name>[^:@]*)(?::(?P<version>[^@]*))?(?:@(?P<digest>.*))?$", re.DOTALL)
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class ModelRef:
    name: str
    version: int | None = None
    sha256: str | None = None

    def __str__(self) -> str:
        text = self.name if self.version is None else f"{self.name}:{self.version}"
        return text if self.sha256 is None else f"{text}@sha256:{self.sha256}"


def check_name(name: str, location: Location | None = None) -> str:
    if not NAME.match(name):
        raise ModelError(
            f"model name {name!r} is not valid",
            location=location,
            hint="start with a letter or digit, then letters, digits, '-' or '_' (at most 255 characters; "
                 "periods are not allowed here because ${MODELS.<name>} placeholders use them)",
        )
    return name


def parse_ref(text: str, location: Location | None = None) -> ModelRef:
    """Parse ``name[:version][@sha256:<hex>]``; ModelError with a hint on anything else."""
    m = _REF.match(text.strip())
    if m is None:  # pragma: no cover - the pattern matches every string
        raise ModelError(f"{text!r} is not a model reference", location=location)
    name = check_name(m.group("name"), location)
    version: int | None = None
    raw_version = m.group("version")
    if raw_version is not None:
        if not raw_version.isascii() or not raw_version.isdigit() or int(raw_version) < 1:
            raise ModelError(f"model version {raw_version!r} in {text!r} is not a positive integer",
                             location=location, hint="write NAME or NAME:VERSION, e.g. sensor-anomaly:3")
        version = int(raw_version)
    digest = m.group("digest")
    if digest is not None:
        if version is None or not _DIGEST.match(digest):
            raise ModelError(f"{text!r}: a digest is written NAME:VERSION@sha256:<64 lowercase hex digits>",
                             location=location)
        digest = digest[len("sha256:"):]
    return ModelRef(name, version, digest)
