"""Host entry scripts in-process for the scoring core's tests: load them in isolation, serve them on loopback."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from amlhost.exchange import Headers, Reply, ScoreRequest
from amlhost.http import HttpHost, HttpOptions
from amlhost.scorer import Scorer
from amlhost.serve import load_scorer
from amlhost.workers import RunThreads

from tests.support.loopthread import LoopThread

__all__ = ["hosted", "isolated", "request", "scorer_for"]


@contextmanager
def isolated() -> Iterator[None]:
    """Loading a script exports AZUREML_*/AML_APP_ROOT and extends sys.path: put both back afterwards."""
    environ, path = dict(os.environ), list(sys.path)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(environ)
        sys.path[:] = path
        sys.modules.pop("entry_module", None)


def scorer_for(folder: Path, text: str, name: str = "score.py") -> Scorer:
    """Write ``text`` as an entry script in ``folder`` and load it (call inside ``isolated()``)."""
    script = folder / name
    script.write_text(text)
    return load_scorer(script, folder, app_root=folder)


def request(method: str = "POST", target: str = "/score", body: bytes = b"",
            headers: tuple[tuple[str, str], ...] = (("Content-Type", "application/json"),)) -> ScoreRequest:
    path, _, query = target.partition("?")
    return ScoreRequest(method, path, query, Headers(headers), body)


def reply_json(reply: Reply) -> object:
    import json

    return json.loads(reply.body)


@contextmanager
def hosted(scorer: Scorer, options: HttpOptions | None = None, threads: int = 1) -> Iterator[tuple[str, int]]:
    """The scorer behind the real HTTP server on 127.0.0.1 (a free port), its loop in a thread."""
    workers = RunThreads(threads)
    host = HttpHost(scorer, workers, options or HttpOptions())
    try:
        with LoopThread("test-loop") as loop_thread:
            address = loop_thread.run(host.start("127.0.0.1", 0), 10)
            try:
                yield address
            finally:
                loop_thread.run(host.close(), 10)
    finally:
        workers.shutdown(wait=False, cancel_futures=True)
