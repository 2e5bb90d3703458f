"""A minimal azmlinfsrv-style host: ``python -m edgegen.models.minihost SCRIPT MODEL_DIR ADDRESS PORT``.

``init()`` once with ``AZUREML_MODEL_DIR=MODEL_DIR``; ``GET /`` → ``Healthy``; ``POST /score`` → ``run(body)``
(JSON bodies as text, others as bytes) on one worker thread, the answer JSON-encoded; errors → 500 with the
message. Only the profiler uses it, as a baseline beside ``edgegen serve`` (``--host builtin``, see ``hosts.py``).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import signal
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any


def load(script: Path, model_dir: Path) -> Any:
    os.environ["AZUREML_MODEL_DIR"] = str(model_dir)
    sys.path.insert(0, str(script.parent))
    spec = importlib.util.spec_from_file_location("entry_script", script)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot import {script}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.init()
    return module


def _encode(result: Any) -> bytes:
    if isinstance(result, (bytes, bytearray)):
        return bytes(result)
    if isinstance(result, str):
        return result.encode()
    return json.dumps(result, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)).encode()


async def serve(module: Any, address: str, port: int) -> None:
    from aiohttp import web

    pool = ThreadPoolExecutor(max_workers=1)
    loop = asyncio.get_running_loop()

    async def health(_request: web.Request) -> web.Response:
        return web.Response(text="Healthy")

    async def score(request: web.Request) -> web.Response:
        body = await request.read()
        ctype = request.headers.get("Content-Type", "")
        data: Any = body.decode("utf-8", errors="replace") if "json" in ctype else body
        try:
            result = await loop.run_in_executor(pool, module.run, data)
            return web.Response(body=_encode(result), content_type="application/json")
        except Exception as exc:
            return web.json_response({"error": type(exc).__name__, "message": str(exc)}, status=500)

    app = web.Application(client_max_size=16 * 1024 * 1024)
    app.router.add_get("/", health)
    app.router.add_post("/score", score)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, address, port, backlog=1024).start()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()
    pool.shutdown(wait=False, cancel_futures=True)


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print("usage: python -m edgegen.models.minihost SCRIPT MODEL_DIR ADDRESS PORT", file=sys.stderr)
        return 2
    script, model_dir, address, port = Path(argv[0]).resolve(), Path(argv[1]).resolve(), argv[2], int(argv[3])
    module = load(script, model_dir)
    asyncio.run(serve(module, address, port))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
