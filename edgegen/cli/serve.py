"""``edgegen serve``: host an Azure ML entry script over HTTP, answering as Azure ML's inference server does.

The scoring core is the package ``amlhost`` (it lives in modules/inference/amlhost, so the inference module and
this command run the same code). No broker, no Azure: what to try before any device.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import TYPE_CHECKING

import click

from edgegen.errors import EdgegenError

if TYPE_CHECKING:
    from amlhost.scorer import Scorer

__all__ = ["ServeError", "serve"]


class ServeError(EdgegenError):
    """The entry script could not be started, or a setting is wrong."""


def _loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return address == "localhost"


@click.command("serve")
@click.argument("entry_script", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--model-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Model folder, exported to the script as AZUREML_MODEL_DIR [default: the environment's, if any].")
@click.option("--port", type=click.IntRange(0, 65535), default=5001, show_default=True,
              help="HTTP port (0: any free port).")
@click.option("--address", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--threads", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Threads running run() (azmlinfsrv: one worker).")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info",
              show_default=True, help="Of the host's own logs (debug: every request). The script's own logging "
              "stays at WARNING, as under azmlinfsrv.")
def serve(entry_script: Path | None, model_dir: Path | None, port: int, address: str, threads: int,
          log_level: str) -> None:
    """Host an Azure ML entry script over HTTP, like azmlinfsrv.

    Serves ENTRY_SCRIPT [default: score.py] on http://ADDRESS:PORT/score until Ctrl-C.

    Plain, inference_schema and @rawhttp scripts run unchanged: POST/GET /score, GET / (liveness),
    GET /swagger.json[?version=2|3|3.1], GET /metrics. The environment settings of the inference module apply:
    SCORING_KEY, MAX_REQUEST_BYTES, SCORING_TIMEOUT_MS, CLIENT_TIMEOUT_SECONDS, SERVICE_NAME, AML_APP_ROOT.

    \b
    Examples:
      edgegen serve score.py --model-dir ./model
      curl -H 'Content-Type: application/json' -d '{"data": [[1, 2, 3]]}' http://127.0.0.1:5001/score
    """
    import asyncio
    import logging

    from amlhost.http import HttpOptions, SettingError
    from amlhost.serve import ServeOptions, StartError
    from amlhost.serve import serve as run_server

    from edgegen.cli.runloop import stop_on_signals

    script = entry_script or Path("score.py")
    if not script.is_file():
        raise ServeError(f"entry script {script} not found",
                         hint="give the script's path: edgegen serve path/to/score.py --model-dir path/to/model")
    if model_dir is not None and not model_dir.is_dir():
        raise ServeError(f"model folder {model_dir} not found", hint="--model-dir must name an existing folder")
    try:
        http_options = HttpOptions.from_environ()
    except SettingError as exc:
        raise ServeError(str(exc), hint="fix or unset that environment variable") from None
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("amlhost").setLevel(log_level.upper())
    if not _loopback(address):
        click.echo(f"warning: listening on {address}, reachable from other machines", err=True)
    options = ServeOptions(script.resolve(), model_dir.resolve() if model_dir else None, address, port, threads,
                           http_options)

    def ready(bound: tuple[str, int], scorer: Scorer) -> None:
        kind = scorer.script.kind.value
        url = f"http://{bound[0]}:{bound[1]}"
        click.echo(f"serving {script} ({kind} run()) on {url}/score  (liveness {url}/, "
                   f"OpenAPI {url}/swagger.json); Ctrl-C stops", err=True)

    async def main() -> None:
        await run_server(options, stop_on_signals(), ready)

    try:
        asyncio.run(main())
    except StartError as exc:
        if exc.traceback:
            click.echo(exc.traceback.rstrip(), err=True)
        raise ServeError(exc.message, hint="fix the entry script (the traceback above shows where)") from None
    except OSError as exc:
        raise ServeError(f"cannot listen on {address}:{port}: {exc.strerror or exc}",
                         hint="choose another --port (or --port 0 for any free one)") from None
