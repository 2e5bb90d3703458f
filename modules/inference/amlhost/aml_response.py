"""``AMLResponse``: what a ``@rawhttp`` entry script returns to set the status, headers and body itself.

Importable as ``azureml.contrib.services.aml_response`` and ``azureml_inference_server_http.api.aml_response``
(see ``shims``). It behaves as azmlinfsrv 1.5.1's class (MIT, Microsoft), which subclasses Flask's response: a
``str`` body goes out as ``text/html; charset=utf-8`` unless the headers say otherwise, ``json_str=True`` JSON-encodes
the message, ``None`` becomes ``{}``, and a header value holding commas becomes one header per part.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from werkzeug.wrappers import Response

__all__ = ["AMLResponse"]


class AMLResponse(Response):
    """A response from ``run()``, passed to the client as it is (the host adds its ``x-ms-*`` headers)."""

    default_mimetype = "text/html"  # Flask's default, which azmlinfsrv's AMLResponse inherits

    def __init__(self, message: Any, status_code: int, response_headers: Mapping[str, str] | None = None,
                 json_str: bool = False, run_function_failed: bool = False) -> None:
        headers = {} if response_headers is None else response_headers
        if message is not None:
            if json_str:
                super().__init__(json.dumps(message), status=status_code, mimetype="application/json")
            else:
                super().__init__(message, status=status_code)
                if "Content-Type" in headers:
                    self.headers.remove("Content-Type")  # the loop below adds the script's own
        else:
            super().__init__(json.dumps({}), status=status_code, mimetype="application/json")
        self.headers["x-ms-run-function-failed"] = run_function_failed
        for header, value in headers.items():
            for part in value.split(","):
                self.headers.add_header(header, part.strip())
