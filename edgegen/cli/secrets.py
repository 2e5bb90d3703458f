"""Options that take a secret (a connection string with its key): from a file, the environment or, still, argv.

``@secret_option("--connection-string", "device_cs", env="IOTEDGE_DEVICE_CONNECTION_STRING")`` declares
``--connection-string CS`` (argv: any local user sees it in ``ps``, so a warning says so), ``--connection-string-file
PATH`` (first line, whitespace stripped) and, when ``env`` is given, the environment variable. The command gets
one resolved value (``None`` when none was given). Precedence: the argv option or the file (not both), then the
environment.
"""

from __future__ import annotations

import functools
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

__all__ = ["secret_option"]


def _read_secret(path: str, flag: str) -> str:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
        mode = stat.S_IMODE(p.stat().st_mode)
    except OSError as exc:
        raise click.BadParameter(f"cannot read {path}: {exc.strerror or exc}", param_hint=flag) from None
    except UnicodeDecodeError:
        raise click.BadParameter(f"{path} is not UTF-8 text", param_hint=flag) from None
    value = text.strip().splitlines()[0].strip() if text.strip() else ""
    if not value:
        raise click.BadParameter(f"{path} is empty", param_hint=flag)
    if mode & 0o077:
        click.echo(f"warning: {path} is mode {mode:04o}: other users may read the key in it (chmod 600 {path})",
                   err=True)
    return value


def secret_option(flag: str, dest: str, *, env: str | None = None, help: str = "", metavar: str = "CS",
                  required: bool = False) -> Callable[[Any], Any]:
    """Declare ``flag``, ``flag-file`` (and ``env``) for one secret passed to the command as ``dest``."""
    file_flag = f"{flag}-file"
    file_dest = f"{dest}_file"
    where = f"{file_flag} PATH" + (f" or {env}" if env else "")

    def decorate(fn: Any) -> Any:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            value, path = kwargs.get(dest), kwargs.pop(file_dest, None)
            ctx = click.get_current_context()
            source = ctx.get_parameter_source(dest)
            if source == ParameterSource.COMMANDLINE:
                if path is not None:
                    raise click.UsageError(f"give {flag} or {file_flag}, not both")
                click.echo(f"warning: {flag} puts the key on the command line, where any local user sees it "
                           f"(ps, /proc); use {where}", err=True)
            elif path is not None:
                value = _read_secret(path, file_flag)
            if required and not value:
                raise click.UsageError(f"give {flag}-file PATH" + (f", set {env}" if env else "") + f" or {flag}")
            kwargs[dest] = value
            return fn(*args, **kwargs)

        wrapper = click.option(file_flag, file_dest, default=None, metavar="PATH",
                               type=click.Path(dir_okay=False),
                               help=f"Read {flag.lstrip('-')} from the first line of PATH (keep it 0600).")(wrapper)
        return click.option(flag, dest, default=None, metavar=metavar, envvar=env, show_envvar=env is not None,
                            help=help + f" Prefer {where}: argv is visible to every local user.")(wrapper)

    return decorate
