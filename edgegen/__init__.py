"""edgegen: Azure IoT Edge solutions, generated, validated, deployed and run locally.

Importing this package is cheap: the Azure SDKs, the Docker SDK and rich are imported only by the
code paths that need them.
"""

from edgegen.errors import EdgegenError

__all__ = ["EdgegenError", "__version__"]
__version__ = "0.1.0"
