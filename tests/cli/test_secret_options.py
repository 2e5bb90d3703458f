"""Options that take a key: a file form and an environment form next to the argv form, which still works but warns
that any local user sees it; the key itself never appears in what the CLI prints."""

from __future__ import annotations

import os
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from edgegen.cli import main
from edgegen.cli.secrets import secret_option
from edgegen.common.sas import mask_secrets

CS = "HostName=127.0.0.1;DeviceId=edge1;SharedAccessKey=c2VjcmV0LWtleS1vZi1lZGdlMS0wMTIzNDU2Nzg5YWI="
KEY = CS.split("SharedAccessKey=")[1]


@click.command()
@secret_option("--connection-string", "cs", env="TEST_EDGE_CS", required=True, help="The device's.")
def show(cs: str) -> None:
    click.echo(f"got {len(cs)} chars, same={cs == CS}")


def invoke(args: list[str], env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(show, args, env=env or {})
    return result.exit_code, result.stdout, result.stderr


def test_file_form(tmp_path: Path) -> None:
    path = tmp_path / "edge1.cs"
    path.write_text(CS + "\n")
    path.chmod(0o600)
    code, out, err = invoke(["--connection-string-file", str(path)])
    assert (code, out, err) == (0, f"got {len(CS)} chars, same=True\n", "")


def test_environment_form() -> None:
    assert invoke([], {"TEST_EDGE_CS": CS}) == (0, f"got {len(CS)} chars, same=True\n", "")


def test_file_wins_over_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "edge1.cs"
    path.write_text(CS)
    path.chmod(0o600)
    assert invoke(["--connection-string-file", str(path)], {"TEST_EDGE_CS": "HostName=other"})[1].endswith("True\n")


def test_argv_form_still_works_and_warns() -> None:
    code, out, err = invoke(["--connection-string", CS])
    assert code == 0 and out.endswith("same=True\n")
    assert err == ("warning: --connection-string puts the key on the command line, where any local user sees it "
                   "(ps, /proc); use --connection-string-file PATH or TEST_EDGE_CS\n")


def test_argv_and_file_together_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "edge1.cs"
    path.write_text(CS)
    code, _, err = invoke(["--connection-string", CS, "--connection-string-file", str(path)])
    assert code == 2 and "give --connection-string or --connection-string-file, not both" in err


@pytest.mark.parametrize(("content", "expected"), [(None, "cannot read"), ("", "is empty"), ("  \n\n", "is empty")])
def test_unreadable_or_empty_file_is_a_clear_error(tmp_path: Path, content: str | None, expected: str) -> None:
    path = tmp_path / "edge1.cs"
    if content is not None:
        path.write_text(content)
    code, _, err = invoke(["--connection-string-file", str(path)])
    assert code == 2 and expected in err and "Traceback" not in err


def test_a_file_others_may_read_gets_a_warning_without_the_key(tmp_path: Path) -> None:
    path = tmp_path / "edge1.cs"
    path.write_text(CS)
    os.chmod(path, 0o644)
    code, _, err = invoke(["--connection-string-file", str(path)])
    assert code == 0 and f"{path} is mode 0644: other users may read the key in it" in err and KEY not in err


def test_missing_secret_is_a_usage_error() -> None:
    code, _, err = invoke([])
    assert code == 2 and "give --connection-string-file PATH, set TEST_EDGE_CS or --connection-string" in err


def test_real_commands_have_the_file_and_environment_forms(capsys: pytest.CaptureFixture[str]) -> None:
    device = ["--connection-string-file", "IOTEDGE_DEVICE_CONNECTION_STRING"]
    for args, wanted in ((["device", "run", "--help"], device), (["hub", "device", "run", "--help"], device),
                         (["hub", "device", "list", "--help"], ["--hub-connection-string-file"]),
                         (["monitor", "--help"], ["--hub-connection-string-file",
                                                  "--eventhub-connection-string-file"])):
        with pytest.raises(SystemExit) as exc:
            main(args)
        out = capsys.readouterr().out
        assert exc.value.code == 0 and all(w in out for w in wanted), (args, out)


def test_mask_secrets() -> None:
    token = "SharedAccessSignature sr=h%2Fdevices%2Fd&sig=abc%2Bdef%3D&se=123&skn=iothubowner"
    assert mask_secrets(CS) == "HostName=127.0.0.1;DeviceId=edge1;SharedAccessKey=****"
    assert mask_secrets(token) == "SharedAccessSignature sr=h%2Fdevices%2Fd&sig=****&se=123&skn=iothubowner"
    assert mask_secrets('{"password=hunter2"}') == '{"password=****"}'
    assert mask_secrets("nothing secret here") == "nothing secret here"
