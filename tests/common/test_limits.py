"""Open-files capacity, rate-limited log lines, retention's cut-off (pure)."""

from __future__ import annotations

import logging

import pytest

from edgegen.common.fdlimit import RESERVE, connection_capacity, nofile_limits, raise_nofile_limit
from edgegen.common.lograte import RepeatFilter
from edgegen.common.retention import Retention


def test_capacity_leaves_a_reserve() -> None:
    assert connection_capacity(1024) == 1024 - RESERVE
    assert connection_capacity(100_000) == 95_000  # 5 % once that is more than the fixed reserve
    assert connection_capacity(10) == 1
    soft, hard = nofile_limits()
    assert 0 < soft <= hard
    before, now = raise_nofile_limit()
    assert now == nofile_limits()[0] == hard and before <= now


def _record(msg: str, level: int = logging.WARNING) -> logging.LogRecord:
    return logging.LogRecord("x", level, __file__, 1, msg, None, None)


def test_repeat_filter_passes_a_burst_then_counts_what_it_dropped() -> None:
    now = [0.0]
    f = RepeatFilter(burst=3, interval=10, clock=lambda: now[0])
    passed = [f.filter(_record("refused %s")) for _ in range(100)]
    assert passed.count(True) == 3
    assert f.filter(_record("another line"))  # other kinds are counted apart
    now[0] = 10.5
    summary = _record("refused %s")
    assert f.filter(summary)
    assert "97 more like this" in summary.msg
    assert f.filter(_record("refused %s", logging.ERROR))  # another level is another kind


def test_retention_cutoff_and_validation() -> None:
    r = Retention(days=1, max_bytes=1000)
    assert r.cutoff_ms(now=100_000.0) == (100_000 - 86_400) * 1000
    assert "1 days" in r.describe()
    with pytest.raises(ValueError):
        Retention(days=0)
