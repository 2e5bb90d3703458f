"""edgegen: Azure IoT Edge solutions, generated, validated, deployed and run locally.

Importing this package is cheap: the Azure SDKs, the Docker SDK and rich are imported only by the
code paths that need them, and ``EdgegenError`` only when it is asked for (``edgegen --help`` stays fast).
"""

from __future__ import annotations

from typing import Any

__all__ = ["EdgegenError", "__version__"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "EdgegenError":
        from edgegen.errors import EdgegenError

        return EdgegenError
    raise AttributeError(f"module 'edgegen' has no attribute {name!r}")
