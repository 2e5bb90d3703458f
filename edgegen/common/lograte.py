"""Repeated log lines, rate-limited: a server under a flood (refused connections, failing accepts) must not write
hundreds of megabytes of the same line.

``RepeatFilter`` lets the first ``burst`` records of a kind (logger, level, first line of the message template)
through in each ``interval`` seconds and drops the rest; the first record of that kind after the interval says
how many were dropped. Attach it to handlers (``install``), so it sees records from every logger.

``MaskFilter`` (installed with it) replaces keys, SAS signatures and passwords in every line by ``****``
(``edgegen.common.sas.mask_secrets``): a connection string in an error message never reaches a log.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

__all__ = ["MaskFilter", "RepeatFilter", "install"]


class MaskFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        from edgegen.common.sas import mask_secrets

        text = record.getMessage()
        masked = mask_secrets(text)
        if masked != text:
            record.msg, record.args = masked, None
        return True


class RepeatFilter(logging.Filter):
    def __init__(self, burst: int = 5, interval: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.burst = burst
        self.interval = interval
        self.clock = clock
        self._kinds: dict[tuple[str, int, str], list[float]] = {}  # kind -> [window start, passed, dropped]

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.msg if isinstance(record.msg, str) else repr(record.msg)
        kind = (record.name, record.levelno, msg.split("\n", 1)[0][:200])
        now = self.clock()
        state = self._kinds.get(kind)
        if state is None or now - state[0] >= self.interval:
            dropped = int(state[2]) if state is not None else 0
            if len(self._kinds) > 1000:
                self._kinds.clear()
            self._kinds[kind] = [now, 1, 0]
            if dropped:
                record.msg = f"{msg} [{dropped} more like this in the last {self.interval:g}s not logged]"
            return True
        if state[1] < self.burst:
            state[1] += 1
            return True
        state[2] += 1
        return False


def install(logger: logging.Logger | None = None, **limits: float) -> RepeatFilter:
    """Put a ``MaskFilter`` and one ``RepeatFilter`` on every handler of ``logger`` (default: the root logger)."""
    target = logger or logging.getLogger()
    repeat = RepeatFilter(**limits)  # type: ignore[arg-type]
    mask = MaskFilter()
    for handler in target.handlers:
        handler.addFilter(mask)
        handler.addFilter(repeat)
    return repeat
