"""Reading engine events (sans I/O) and showing them: Docker's push stream carries per-layer progress, which
podman 4's compat API does not send, so its shapes are checked here on the reader and the progress display."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from edgegen.images.build import BuildEvent
from edgegen.images.push import PushEvent, read_push_event

DIGEST = "sha256:" + "c" * 64
TAG = "localhost:5000/sensor:0.1.0-amd64"

# The stream `docker push` produces (Docker Engine API /images/{name}/push), one decoded object per line.
DOCKER_PUSH = [
    {"status": "The push refers to repository [localhost:5000/sensor]"},
    {"status": "Preparing", "progressDetail": {}, "id": "5f70bf18a086"},
    {
        "status": "Pushing",
        "progressDetail": {"current": 512, "total": 2048},
        "progress": "[==> ]",
        "id": "5f70bf18a086",
    },
    {
        "status": "Pushing",
        "progressDetail": {"current": 2048, "total": 2048},
        "progress": "[====]",
        "id": "5f70bf18a086",
    },
    {"status": "Pushed", "progressDetail": {}, "id": "5f70bf18a086"},
    {"status": f"0.1.0-amd64: digest: {DIGEST} size: 528"},
    {"progressDetail": {}, "aux": {"Tag": "0.1.0-amd64", "Digest": DIGEST, "Size": 528}},
]


def test_docker_push_stream_gives_layer_progress_and_the_digest() -> None:
    steps = [read_push_event(TAG, e) for e in DOCKER_PUSH]
    layers = [s.event for s in steps if s.event and s.event.layer]
    assert [(e.status, e.current, e.total) for e in layers] == [
        ("Preparing", None, None),
        ("Pushing", 512, 2048),
        ("Pushing", 2048, 2048),
        ("Pushed", None, None),
    ]
    assert [s.digest for s in steps if s.digest] == [DIGEST, DIGEST]
    assert steps[-1].event is None and all(s.error is None for s in steps)


def test_error_event_is_read_as_an_error() -> None:
    step = read_push_event(TAG, {"errorDetail": {"message": "denied: requested access"}, "error": "denied"})
    assert step.error == "denied: requested access" and step.event is None


def test_json_reporter_writes_one_object_per_event(capsys: pytest.CaptureFixture[str]) -> None:
    from edgegen.cli.images import _JsonReporter

    rep = _JsonReporter()
    rep.build_event(BuildEvent(TAG, "step", "COPY a /a", 2, 3))
    for step in (read_push_event(TAG, e) for e in DOCKER_PUSH):
        if step.event:
            rep.push_event(step.event)
    lines = [json.loads(x) for x in capsys.readouterr().err.splitlines()]
    assert lines[0] == {"event": "build", "kind": "step", "tag": TAG, "text": "COPY a /a", "step": 2, "total": 3}
    assert {"event": "push", "tag": TAG, "status": "Pushing", "layer": "5f70bf18a086", "current": 512,
            "total": 2048} in lines  # fmt: skip


def test_rich_reporter_has_a_bar_per_build_and_per_layer() -> None:
    from rich.console import Console

    from edgegen.cli.images import _RichReporter

    out = io.StringIO()
    rep = _RichReporter(Console(file=out, width=120))
    with rep:
        rep.build_event(BuildEvent(TAG, "step", "FROM scratch", 1, 2))
        rep.build_event(BuildEvent(TAG, "step", "COPY a /a", 2, 2))
        rep.build_event(BuildEvent(TAG, "done", "built", 2, 2))
        for step in (read_push_event(TAG, e) for e in DOCKER_PUSH):
            if step.event:
                rep.push_event(step.event)
        rep.push_event(PushEvent(TAG, f"pushed {TAG}"))
    tasks = {t.description: t for t in rep.progress.tasks}
    assert tasks[f"build {TAG}"].completed == tasks[f"build {TAG}"].total == 2
    layer = tasks["  layer 5f70bf18a086"]
    assert layer.total == 2048 and layer.completed == 2048
    assert tasks[f"push {TAG}"].finished
    assert layer.finished and layer.fields["detail"] == "Pushed"
    text = out.getvalue()
    assert "COPY a /a" in text and "\n  Pushing" not in text  # layer progress is a bar, not log lines


def test_dockerfile_line_follows_step_numbers_through_continuations_and_duplicates(tmp_path: Path) -> None:
    from edgegen.images.build import dockerfile_line

    df = tmp_path / "Dockerfile"
    df.write_text(
        "# syntax comment\nFROM scratch\nCOPY a /a\n\nCOPY b \\\n     /b\nCOPY a /a\nLABEL x=1\n",
        encoding="utf-8",
    )
    assert dockerfile_line(df, "COPY a /a", 4) == (7, "COPY a /a")  # the second, identical COPY
    assert dockerfile_line(df, "COPY a /a", 2) == (3, "COPY a /a")
    assert dockerfile_line(df, "COPY b /b", 3) == (5, "COPY b \\")
    assert dockerfile_line(df, "COPY b /b") == (5, "COPY b \\")  # no step number: by text
    assert dockerfile_line(df, 'LABEL "org"="x"', 6) is None  # a step the engine added (podman's --label)
    assert dockerfile_line(tmp_path / "missing", "FROM scratch", 1) is None
