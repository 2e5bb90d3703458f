"""The standalone host (``edgegen serve``): load the script, call ``init()`` once, serve HTTP until told to stop.

No broker, no Azure: what a user runs before any device, answering as azmlinfsrv would. A failing import or
``init()`` raises ``StartError`` carrying the original exception and its traceback text.
"""

from __future__ import annotations

import asyncio
import os
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .http import HttpHost, HttpOptions
from .scorer import Scorer, server_version
from .script import ScriptError, load_entry_script
from .swagger import Swagger, SwaggerError
from .workers import RunThreads

__all__ = ["ServeOptions", "StartError", "load_scorer", "serve"]


class StartError(Exception):
    """The script could not be imported, its ``init()`` failed, or it breaks the contract."""

    def __init__(self, message: str, cause: BaseException | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.cause = cause
        self.traceback = "".join(traceback.format_exception(cause)) if cause is not None else ""


@dataclass(frozen=True)
class ServeOptions:
    entry_script: Path
    model_dir: Path | None = None
    host: str = "127.0.0.1"
    port: int = 5001
    threads: int = 1
    http: HttpOptions = field(default_factory=HttpOptions)
    app_root: Path | None = None


def load_scorer(entry_script: Path, model_dir: Path | None = None, app_root: Path | None = None) -> Scorer:
    """Import the script, call ``init()``, build the swagger documents. Raises ``StartError``."""
    try:
        script = load_entry_script(entry_script, model_dir, app_root=app_root)
    except ScriptError as exc:
        raise StartError(str(exc)) from None
    except BaseException as exc:
        raise StartError(f"importing {entry_script} failed: {type(exc).__name__}: {exc}", exc) from None
    try:
        script.init()
    except BaseException as exc:
        raise StartError(f"init() of {entry_script.name} failed: {type(exc).__name__}: {exc}", exc) from None
    try:
        swagger = Swagger(script.run, Path(os.environ["AML_APP_ROOT"]))
    except SwaggerError as exc:
        raise StartError(str(exc)) from None
    return Scorer(script, swagger, server_version())


async def serve(options: ServeOptions, stop: asyncio.Event,
                on_ready: Callable[[tuple[str, int], Scorer], None] | None = None) -> None:
    """Serve until ``stop`` is set. ``init()`` runs in the thread that will run ``run()``."""
    threads = RunThreads(options.threads)
    loop = asyncio.get_running_loop()
    try:
        scorer = await loop.run_in_executor(threads, load_scorer, options.entry_script, options.model_dir,
                                            options.app_root)
        host = HttpHost(scorer, threads, options.http)
        address = await host.start(options.host, options.port)
        try:
            if on_ready is not None:
                on_ready(address, scorer)
            await stop.wait()
        finally:
            await host.close()
    finally:
        threads.shutdown(wait=False, cancel_futures=True)
