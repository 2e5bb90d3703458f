"""module.json ``buildOptions`` (docker CLI flags, as iotedgedev accepts them) → Docker SDK build keyword arguments.

Pure: strings in, a :class:`BuildOptions` value out. Each entry of ``buildOptions`` is one flag with its value,
``"--build-arg KEY=VALUE"`` or ``"--build-arg=KEY=VALUE"``; flags without a value (``--no-cache``) may carry an
explicit ``true``/``false``. ``--rm``, ``-t/--tag`` and ``-f/--file`` are ignored with a note (the tag and the
Dockerfile come from module.json), exactly as iotedgedev does. Anything else is an error naming the module.json and
the option.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from edgegen.errors import Location
from edgegen.images.errors import ImageError

__all__ = ["IGNORED", "SUPPORTED", "BuildOptions", "parse_build_options"]

IGNORED = ("--rm", "--tag", "-t", "--file", "-f")


@dataclass(frozen=True)
class BuildOptions:
    """Docker SDK ``APIClient.build`` keyword arguments (``kwargs``) plus notes for ignored flags."""

    kwargs: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


class _Bad(ValueError):
    pass


def _split_kv(value: str, sep: str, what: str) -> tuple[str, str]:
    if sep not in value:
        raise _Bad(f"expected {what}")
    k, v = value.split(sep, 1)
    if not k:
        raise _Bad(f"expected {what}")
    return k, v


def _flag(value: str | None) -> bool:
    if value is None or value == "":
        return True
    low = value.lower()
    if low in ("true", "1"):
        return True
    if low in ("false", "0"):
        return False
    raise _Bad("expected no value, 'true' or 'false'")


def _need(value: str | None) -> str:
    if value is None or value == "":
        raise _Bad("expected a value")
    return value


def _dict(key: str, splitter: Callable[[str], tuple[str, str]]) -> Callable[[dict[str, Any], str | None], None]:
    def apply(out: dict[str, Any], value: str | None) -> None:
        k, v = splitter(_need(value))
        out.setdefault(key, {})[k] = v

    return apply


def _list(key: str) -> Callable[[dict[str, Any], str | None], None]:
    def apply(out: dict[str, Any], value: str | None) -> None:
        out.setdefault(key, []).append(_need(value))

    return apply


def _val(key: str) -> Callable[[dict[str, Any], str | None], None]:
    def apply(out: dict[str, Any], value: str | None) -> None:
        out[key] = _need(value)

    return apply


def _bool(key: str) -> Callable[[dict[str, Any], str | None], None]:
    def apply(out: dict[str, Any], value: str | None) -> None:
        out[key] = _flag(value)

    return apply


def _limit(key: str, as_int: bool = False) -> Callable[[dict[str, Any], str | None], None]:
    def apply(out: dict[str, Any], value: str | None) -> None:
        v: Any = _need(value)
        if as_int:
            try:
                v = int(v)
            except ValueError:
                raise _Bad("expected an integer") from None
        out.setdefault("container_limits", {})[key] = v

    return apply


def _build_arg(value: str) -> tuple[str, str]:
    # `--build-arg NAME` without a value is valid for the docker CLI (taken from the environment); the SDK needs
    # a value, so we require one and say so.
    return _split_kv(value, "=", "NAME=VALUE")


def _host(value: str) -> tuple[str, str]:
    return _split_kv(value, ":", "HOST:IP")


def _label(value: str) -> tuple[str, str]:
    return (value.split("=", 1)[0], value.split("=", 1)[1]) if "=" in value else (value, "")


# docker CLI flag -> how it lands in the SDK's build() kwargs.
SUPPORTED: dict[str, Callable[[dict[str, Any], str | None], None]] = {
    "--add-host": _dict("extra_hosts", _host),
    "--build-arg": _dict("buildargs", _build_arg),
    "--cache-from": _list("cache_from"),
    "--cpu-shares": _limit("cpushares", as_int=True),
    "-c": _limit("cpushares", as_int=True),
    "--cpuset-cpus": _limit("cpusetcpus"),
    "--force-rm": _bool("forcerm"),
    "--isolation": _val("isolation"),
    "--label": _dict("labels", _label),
    "--memory": _limit("memory"),
    "-m": _limit("memory"),
    "--memory-swap": _limit("memswap"),
    "--network": _val("network_mode"),
    "--no-cache": _bool("nocache"),
    "--platform": _val("platform"),
    "--pull": _bool("pull"),
    "--quiet": _bool("quiet"),
    "-q": _bool("quiet"),
    "--shm-size": _val("shmsize"),
    "--squash": _bool("squash"),
    "--target": _val("target"),
}

_WS = re.compile(r"\s+")


def _split(option: str) -> tuple[str, str | None]:
    parts = _WS.split(option.strip(), maxsplit=1)
    if len(parts) == 2:
        return parts[0], parts[1]
    head = parts[0]
    if head.startswith("--") and "=" in head:
        k, v = head.split("=", 1)
        return k, v
    return head, None


def _shmsize(value: Any) -> int:
    """Docker's byte-size syntax (``64m``, ``1g``) → bytes, as the SDK wants an int."""
    text = str(value).strip().lower()
    m = re.fullmatch(r"(\d+)([bkmg]?)b?", text)
    if not m:
        raise _Bad("expected a size such as 64m or 1g")
    return int(m.group(1)) * {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[m.group(2)]


def parse_build_options(options: Sequence[str], source: str = "module.json") -> BuildOptions:
    """Map ``buildOptions`` to SDK kwargs; ``source`` (the module.json path) is named in errors."""
    out: dict[str, Any] = {}
    notes: list[str] = []
    for index, raw in enumerate(options):
        where = Location(file=source, json_path=f"image.buildOptions[{index}]", source_line=str(raw))
        if not isinstance(raw, str):
            raise ImageError(f"build option {raw!r} is not a string", location=where)
        if not raw.strip():
            continue
        key, value = _split(raw)
        if key in IGNORED:
            notes.append(f"build option {key} ignored (the tag and Dockerfile come from module.json)")
            continue
        apply = SUPPORTED.get(key)
        if apply is None:
            raise ImageError(
                f"unsupported build option {key!r}",
                location=where,
                hint=f"supported: {', '.join(sorted(SUPPORTED))}; ignored: {', '.join(IGNORED)}",
            )
        try:
            apply(out, value)
            if key == "--shm-size":
                out["shmsize"] = _shmsize(out["shmsize"])
        except _Bad as exc:
            raise ImageError(f"build option {key}: {exc}", location=where) from None
    return BuildOptions(kwargs=out, notes=tuple(notes))
