"""Time as every command records it: naive UTC timestamps and named stopwatches."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["Stopwatch", "utc_now"]


def utc_now(*, seconds: bool = False) -> dt.datetime:
    """Now in UTC without a zone (the tables' ``timestamp`` columns hold UTC); ``seconds`` drops the
    fraction, for run stamps a person reads."""
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    return now.replace(microsecond=0) if seconds else now


class Stopwatch:
    """Seconds per named stage (a stage entered twice adds up) and since the start."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._started = time.perf_counter()

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = round(self.seconds.get(name, 0.0) + time.perf_counter() - started, 3)

    def total(self) -> float:
        return round(time.perf_counter() - self._started, 3)
