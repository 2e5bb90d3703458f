"""End-to-end fixtures: the device tests' shared venv cache."""

from tests.local.device.conftest import venv_cache  # noqa: F401
