"""`edgegen model …` in-process: register, list, show, download, delete, verify; errors exit 1 without traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgegen.cli import main


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(args)
    out = capsys.readouterr()
    return int(exc.value.code or 0), out.out, out.err


def test_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.json").write_text('{"w": 1}')
    code, out, _ = run(["model", "register", "m.json", "--name", "anomaly", "--tag", "stage=dev",
                        "--property", "auc=0.91", "--description", "first", "--output", "json"], capsys)
    assert code == 0 and json.loads(out)["id"] == "anomaly:1"
    assert (tmp_path / ".models" / "models" / "anomaly" / "1.json").is_file()  # the solution's registry
    code, out, _ = run(["model", "register", "m.json", "--name", "anomaly", "--tag", "stage=dev",
                        "--property", "auc=0.91", "--if-changed"], capsys)
    assert code == 0 and out.startswith("Unchanged, kept anomaly:1")
    code, out, _ = run(["model", "list"], capsys)
    assert "anomaly:1" in out and "stage=dev" in out
    code, out, _ = run(["model", "show", "anomaly", "--output", "json"], capsys)
    assert json.loads(out)["properties"] == {"auc": "0.91"}
    code, out, _ = run(["model", "download", "anomaly:1", "--target", "out"], capsys)
    assert code == 0 and (tmp_path / "out" / "m.json").read_text() == '{"w": 1}'
    code, out, _ = run(["model", "verify"], capsys)
    assert code == 0 and "anomaly:1: ok" in out
    code, _, err = run(["model", "delete", "anomaly"], capsys)
    assert code == 2 and "--yes" in err
    code, out, _ = run(["model", "delete", "anomaly:1"], capsys)
    assert code == 0 and "Deleted anomaly:1" in out
    code, out, _ = run(["model", "list", "--output", "json"], capsys)
    assert json.loads(out) == []


def test_errors_are_one_clear_message(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = run(["model", "register", "missing.pkl", "--name", "m"], capsys)
    assert code == 1 and "missing.pkl does not exist" in err and "Traceback" not in err
    code, _, err = run(["model", "show", "nothing:2"], capsys)
    assert code == 1 and "not registered" in err
    (tmp_path / "m").write_text("x")
    code, _, err = run(["model", "register", "m", "--name", "m", "--tag", "novalue"], capsys)
    assert code == 2 and "KEY=VALUE" in err
    code, _, err = run(["model", "register", "m", "--name", "m", "--framework", "cobol"], capsys)
    assert code == 1 and "unknown framework" in err


def test_verify_reports_a_corrupted_blob(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m").write_text("x")
    run(["model", "register", "m", "--name", "m"], capsys)
    blob = next(p for p in (tmp_path / ".models" / "blobs").rglob("*") if p.is_file())
    blob.chmod(0o644)
    blob.write_text("y")
    code, out, _ = run(["model", "verify"], capsys)
    assert code == 1 and "corrupted" in out
