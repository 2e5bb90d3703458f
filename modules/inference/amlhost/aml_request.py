"""``rawhttp`` and ``AMLRequest`` for entry scripts that want the raw HTTP request.

Importable under the names real scripts use (see ``shims``): ``azureml.contrib.services.aml_request`` and
``azureml_inference_server_http.api.aml_request``. As in azmlinfsrv, ``@rawhttp`` returns ``run`` unchanged and only
raises a module-wide flag; the host reads it after importing the script. ``run(request)`` then gets an
``AMLRequest``: a Werkzeug request (the same request class Flask builds on), so ``method``, ``headers``, ``args``,
``get_data()``, ``data``, ``get_json()``, ``form``, ``files`` and ``full_path`` behave as under azmlinfsrv.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from werkzeug.wrappers import Request

__all__ = ["AMLRequest", "rawhttp"]

F = TypeVar("F", bound=Callable[..., Any])

_rawHttpRequested = False


def rawhttp(func: F) -> F:
    """Ask for the raw request: ``run(request)`` receives an ``AMLRequest``."""
    global _rawHttpRequested
    _rawHttpRequested = True
    return func


class AMLRequest(Request):
    """The request ``run()`` receives under ``@rawhttp`` (a Werkzeug request built from the HTTP request)."""

    # Flask's defaults (MAX_FORM_MEMORY_SIZE, MAX_FORM_PARTS), which azmlinfsrv's Flask request applies.
    max_form_memory_size = 500_000
    max_form_parts = 1_000
