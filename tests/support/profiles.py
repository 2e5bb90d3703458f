"""Hypothesis profiles and the named example counts every property test uses (no magic numbers in tests).

Two profiles, registered and loaded when this module is first imported (tests/conftest.py does it first):

- ``default`` (local runs): few examples, random, with Hypothesis' example database, so a quick ``pytest`` stays
  quick and a failure found once is replayed first.
- ``ci`` (``CI`` set, as ``.ci/run`` does, or ``EDGEGEN_HYPOTHESIS_PROFILE=ci``): derandomized (a fixed seed per
  test, so every CI run tries the same cases and a failure reproduces), no database, and the fuzz targets at
  ``CI_FUZZ_EXAMPLES`` (10,000) each.

Tests pick one of the named settings: ``FUZZ`` (fuzz targets over hostile input: validate, genconfig, route test,
the MQTT codec, the REST API), ``PROPERTY`` (ordinary property tests) or ``EXPENSIVE`` (a property test whose
examples each cost milliseconds or more). ``EDGEGEN_FUZZ_EXAMPLES`` overrides ``FUZZ``'s count (e.g. 100000 for a
long local hunt).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

__all__ = ["CI_FUZZ_EXAMPLES", "EXPENSIVE", "FUZZ", "PROFILE", "PROPERTY", "examples"]

CI_FUZZ_EXAMPLES = 10_000
_COUNTS = {  # (local, ci) examples per test
    "fuzz": (200, CI_FUZZ_EXAMPLES),
    "property": (100, 500),
    "expensive": (25, 200),
}


def _profile_name() -> str:
    chosen = os.environ.get("EDGEGEN_HYPOTHESIS_PROFILE")
    if chosen:
        return chosen
    return "ci" if os.environ.get("CI") else "default"


def _register() -> str:
    common = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}
    settings.register_profile("default", max_examples=_COUNTS["property"][0], **common)
    settings.register_profile("ci", max_examples=_COUNTS["property"][1], derandomize=True, database=None,
                              print_blob=True, **common)
    name = _profile_name()
    settings.load_profile(name)
    return name


PROFILE = _register()


def examples(tier: str) -> int:
    """How many examples a test of ``tier`` (fuzz, property, expensive) runs under the loaded profile."""
    local, ci = _COUNTS[tier]
    if tier == "fuzz" and os.environ.get("EDGEGEN_FUZZ_EXAMPLES"):
        return int(os.environ["EDGEGEN_FUZZ_EXAMPLES"])
    return ci if PROFILE == "ci" else local


FUZZ = settings(max_examples=examples("fuzz"))
PROPERTY = settings(max_examples=examples("property"))
EXPENSIVE = settings(max_examples=examples("expensive"))
