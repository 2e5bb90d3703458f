"""`edgegen model …` in-process: register, list, show, download, delete, verify; errors exit 1 without traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli import CliRunner


def test_round_trip(tmp_path: Path, cli: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.json").write_text('{"w": 1}')
    code, out, _ = cli(["model", "register", "m.json", "--name", "anomaly", "--tag", "stage=dev",
                        "--property", "auc=0.91", "--description", "first", "--output", "json"])
    assert code == 0 and json.loads(out)["id"] == "anomaly:1"
    assert (tmp_path / ".models" / "models" / "anomaly" / "1.json").is_file()  # the solution's registry
    code, out, _ = cli(["model", "register", "m.json", "--name", "anomaly", "--tag", "stage=dev",
                        "--property", "auc=0.91", "--if-changed"])
    assert code == 0 and out.startswith("Unchanged, kept anomaly:1")
    code, out, _ = cli(["model", "list"])
    assert "anomaly:1" in out and "stage=dev" in out
    code, out, _ = cli(["model", "show", "anomaly", "--output", "json"])
    assert json.loads(out)["properties"] == {"auc": "0.91"}
    code, out, _ = cli(["model", "download", "anomaly:1", "--target", "out"])
    assert code == 0 and (tmp_path / "out" / "m.json").read_text() == '{"w": 1}'
    code, out, _ = cli(["model", "verify"])
    assert code == 0 and "anomaly:1: ok" in out
    code, _, err = cli(["model", "delete", "anomaly"])
    assert code == 2 and "--yes" in err
    code, out, _ = cli(["model", "delete", "anomaly:1"])
    assert code == 0 and "Deleted anomaly:1" in out
    code, out, _ = cli(["model", "list", "--output", "json"])
    assert json.loads(out) == []


def test_errors_are_one_clear_message(tmp_path: Path, cli: CliRunner,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = cli(["model", "register", "missing.pkl", "--name", "m"])
    assert code == 1 and "missing.pkl does not exist" in err and "Traceback" not in err
    code, _, err = cli(["model", "show", "nothing:2"])
    assert code == 1 and "not registered" in err
    (tmp_path / "m").write_text("x")
    code, _, err = cli(["model", "register", "m", "--name", "m", "--tag", "novalue"])
    assert code == 2 and "KEY=VALUE" in err
    code, _, err = cli(["model", "register", "m", "--name", "m", "--framework", "cobol"])
    assert code == 1 and "unknown framework" in err


def test_verify_reports_a_corrupted_blob(tmp_path: Path, cli: CliRunner,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m").write_text("x")
    cli(["model", "register", "m", "--name", "m"])
    blob = next(p for p in (tmp_path / ".models" / "blobs").rglob("*") if p.is_file())
    blob.chmod(0o644)
    blob.write_text("y")
    code, out, _ = cli(["model", "verify"])
    assert code == 1 and "corrupted" in out
