"""Build one module image for one platform: Dockerfile and context from module.json, the tag genconfig uses.

Progress arrives as :class:`BuildEvent` values through ``on_event``; a failing step raises :class:`ImageError`
pointing at the Dockerfile line of that step, with the step's last output lines.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edgegen.errors import Location
from edgegen.generator.modulejson import ModuleSpec
from edgegen.images.buildoptions import parse_build_options
from edgegen.images.engine import Engine
from edgegen.images.errors import ImageError
from edgegen.images.registries import Masker
from edgegen.images.wheels import prepare_wheels

__all__ = ["BuildEvent", "BuildResult", "build_image", "dockerfile_line"]

_STEP = re.compile(r"^(?:STEP|Step)\s+(\d+)/(\d+)\s*:\s*(.*)$")
_TAIL = 8


@dataclass(frozen=True)
class BuildEvent:
    tag: str
    kind: str  # "start" | "step" | "log" | "note" | "done"
    text: str
    step: int | None = None
    total: int | None = None


@dataclass(frozen=True)
class BuildResult:
    module: str
    platform: str
    tag: str
    image_id: str
    dockerfile: str
    seconds: float
    notes: tuple[str, ...] = ()


def _instructions(lines: list[str]) -> list[tuple[int, str]]:
    """(1-based first line, instruction text with continuations joined) for each Dockerfile instruction."""
    out: list[tuple[int, str]] = []
    current: list[str] = []
    first = 0
    for i, raw in enumerate(lines):
        stripped = raw.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if current and stripped.startswith("#"):
            continue  # comment lines inside a continued instruction are dropped by the parser
        if not current:
            first = i + 1
        if stripped.endswith("\\"):
            current.append(stripped[:-1].strip())
            continue
        current.append(stripped)
        out.append((first, " ".join(" ".join(current).split())))
        current = []
    if current:
        out.append((first, " ".join(" ".join(current).split())))
    return out


def dockerfile_line(dockerfile: Path, instruction: str, step: int | None = None) -> tuple[int, str] | None:
    """(1-based line, text) of the Dockerfile line where ``instruction`` (as the engine echoes it) starts.

    The engine numbers steps by instruction, so step N is the N-th instruction when its keyword matches;
    otherwise (extra steps an engine adds, echo differences) the first instruction with the same text wins.
    """
    want = " ".join(instruction.split())
    if not want:
        return None
    try:
        lines = dockerfile.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    found = _instructions(lines)
    keyword = want.split(" ", 1)[0].upper()
    if step is not None and 0 < step <= len(found) and found[step - 1][1].split(" ", 1)[0].upper() == keyword:
        line = found[step - 1][0]
        return line, lines[line - 1]
    rest_want = want.split(" ", 1)[1] if " " in want else ""
    for line, text in found:
        head, _, rest = text.partition(" ")
        if head.upper() == keyword and (rest_want.startswith(rest) or rest.startswith(rest_want)):
            return line, lines[line - 1]
    return None


def build_image(
    engine: Engine,
    spec: ModuleSpec,
    platform: str,
    container_tag: str = "",
    *,
    on_event: Callable[[BuildEvent], None] | None = None,
    masker: Masker | None = None,
    wheels: bool = True,
) -> BuildResult:
    """Build ``spec`` for ``platform``; returns the image id. Raises ImageError on any failure.

    With ``wheels`` (the default), a context holding a ``wheels/`` folder and a ``requirements.txt`` first gets
    the requirements' wheels for the platform (``edgegen.images.wheels``), so its build needs no package index.
    """
    mask = masker or Masker()
    emit = on_event or (lambda _e: None)
    module_json = str(spec.folder / "module.json")
    dockerfile = spec.dockerfile(platform)
    tag = spec.image(platform, container_tag)
    if not dockerfile.is_file():
        raise ImageError(
            f"module {spec.name!r}: the Dockerfile for platform {platform!r} does not exist: {dockerfile}",
            location=Location(file=module_json, json_path=f"image.tag.platforms.{platform}"),
            hint="create that file or point the platform at an existing Dockerfile",
        )
    context = spec.context
    if not context.is_dir():
        raise ImageError(
            f"module {spec.name!r}: the build context {context} is not a folder",
            location=Location(file=module_json, json_path="image.contextPath"),
        )
    options = parse_build_options(spec.build_options, source=module_json)
    start = time.monotonic()
    emit(BuildEvent(tag, "start", f"building {tag} from {dockerfile}"))
    notes = list(options.notes)
    if wheels:
        got = prepare_wheels(context, platform, dockerfile)
        if got is not None:
            how = f"downloaded: {got.how}" if got.downloaded else "unchanged"
            notes.append(f"{got.count} wheels in {got.folder} ({how})")
            emit(BuildEvent(tag, "note", notes[-1]))
    for note in options.notes:
        emit(BuildEvent(tag, "note", note))
    kwargs = {"path": str(context), "dockerfile": str(dockerfile), "tag": tag, "rm": True, **options.kwargs}
    step_text, step, total = "", None, None
    tail: list[str] = []
    image_id = ""
    for event in engine.build(**kwargs):
        if "error" in event or "errorDetail" in event:
            detail = (event.get("errorDetail") or {}).get("message") or event.get("error") or "unknown error"
            _fail(spec, dockerfile, tag, step_text, step, total, mask(str(detail).strip()), [mask(t) for t in tail])
        if "aux" in event and isinstance(event["aux"], dict) and event["aux"].get("ID"):
            image_id = str(event["aux"]["ID"])
        text = event.get("stream") or event.get("status") or ""
        for line in str(text).splitlines():
            line = line.rstrip()
            if not line:
                continue
            m = _STEP.match(line)
            if m:
                step, total, step_text = int(m.group(1)), int(m.group(2)), m.group(3).strip()
                tail = []
                emit(BuildEvent(tag, "step", mask(step_text), step, total))
            else:
                tail = [*tail[-(_TAIL - 1) :], line]
                emit(BuildEvent(tag, "log", mask(line), step, total))
    if not image_id:
        attrs = engine.image(tag)
        if attrs is None:
            raise ImageError(f"the engine reported no image for {tag} after the build", hint="run with --traceback")
        image_id = str(attrs.get("Id", ""))
    seconds = time.monotonic() - start
    emit(BuildEvent(tag, "done", f"built {tag} ({image_id[:19]}) in {seconds:.1f}s", total, total))
    return BuildResult(spec.name, platform, tag, image_id, str(dockerfile), seconds, tuple(notes))


def _fail(
    spec: ModuleSpec,
    dockerfile: Path,
    tag: str,
    step_text: str,
    step: int | None,
    total: int | None,
    detail: str,
    tail: list[str],
) -> None:
    where = Location(file=str(dockerfile))
    if step_text:
        found = dockerfile_line(dockerfile, step_text, step)
        if found:
            where = Location(file=str(dockerfile), line=found[0], source_line=found[1])
        at = f" at step {step}/{total} `{step_text}`"
    else:
        at = ""
    message = f"building module {spec.name!r} as {tag} failed{at}: {detail}"
    if tail:
        message += "\nlast output of the step:\n" + "\n".join(f"  | {t}" for t in tail)
    hint = "fix the Dockerfile step above (or its build context) and build again"
    raise ImageError(message, location=where, hint=hint)
