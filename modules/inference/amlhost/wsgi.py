"""The request as a WSGI environ, the way gunicorn builds it for azmlinfsrv, and the headers dict ``run()`` sees.

Used for ``@rawhttp`` scripts (an ``AMLRequest`` is a Werkzeug request over this environ) and for the
``request_headers`` argument: gunicorn drops header names holding ``_``, joins a repeated header with ``,``, and
Werkzeug then names them ``X-Ms-Client-Request-Id`` style (``str.title``), ``Content-Type``/``Content-Length`` too.
"""

from __future__ import annotations

import io
import sys
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_to_bytes

from .exchange import HeaderMap, ScoreRequest

if TYPE_CHECKING:
    from .aml_request import AMLRequest

__all__ = ["aml_request", "environ", "header_dict"]


def header_dict(headers: HeaderMap) -> dict[str, str]:
    """``dict(request.headers)`` as a script under azmlinfsrv gets it (``request_headers``)."""
    found: dict[str, str] = {}
    for name, value in headers.items():
        if "_" in name:
            continue
        key = name.title()
        if key in ("Content-Type", "Content-Length"):
            if value:
                found[key] = value
        elif key in found:
            found[key] = f"{found[key]},{value}"
        else:
            found[key] = value
    return found


def environ(request: ScoreRequest) -> dict[str, Any]:
    server_name, server_port = request.server
    env: dict[str, Any] = {
        "REQUEST_METHOD": request.method,
        "SCRIPT_NAME": "",
        "PATH_INFO": unquote_to_bytes(request.path).decode("latin-1"),
        "QUERY_STRING": request.query_string.encode("utf-8", "surrogateescape").decode("latin-1"),  # WSGI: bytes as str
        "RAW_URI": request.path + (f"?{request.query_string}" if request.query_string else ""),
        "SERVER_NAME": server_name,
        "SERVER_PORT": str(server_port),
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(request.body),
        "wsgi.input_terminated": True,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    if request.remote is not None:
        env["REMOTE_ADDR"], env["REMOTE_PORT"] = request.remote[0], str(request.remote[1])
    for name, value in request.headers.items():
        if "_" in name:
            continue
        key = name.upper().replace("-", "_")
        if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            env[key] = value
            continue
        key = "HTTP_" + key
        env[key] = f"{env[key]},{value}" if key in env else value
    return env


def aml_request(request: ScoreRequest) -> AMLRequest:
    from .aml_request import AMLRequest

    return AMLRequest(environ(request))
