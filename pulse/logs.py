"""Logging for every entry point: configured once, one line per record, structured fields as key=value."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable

_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class _KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = {k: v for k, v in record.__dict__.items() if k not in _STANDARD}
        if fields:
            line += " " + " ".join(
                f"{k}={v!r}" if isinstance(v, str) and " " in v else f"{k}={v}" for k, v in fields.items()
            )
        return line


class RepeatedClientErrors(logging.Filter):
    """Lets through one record per Kafka client logger and message template every `window_s`; the next one
    let through says how many were held back. While a broker of a cluster is down, kafka-python logs an
    ERROR (with a traceback) for every reconnect attempt of every connection, hundreds a second across a
    run's processes, which buries what the pipeline says; the first of each kind still shows at once."""

    def __init__(self, window_s: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.window_s = window_s
        self.clock = clock
        self._shown_at: dict[tuple[str, str], float] = {}
        self._held: dict[tuple[str, str], int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("kafka.") or record.levelno < logging.WARNING:
            return True
        key = (record.name, str(record.msg))
        now = self.clock()
        if now - self._shown_at.get(key, -self.window_s) < self.window_s:
            self._held[key] = self._held.get(key, 0) + 1
            return False
        self._shown_at[key] = now
        held = self._held.pop(key, 0)
        if held:
            record.msg = f"{record.msg} ({held} more like this in the last {self.window_s:.0f} s not shown)"
        return True


def configure(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_KeyValueFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RepeatedClientErrors())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # kafka-python logs every reconnect attempt at INFO/WARNING; its errors reach us as exceptions anyway.
    logging.getLogger("kafka").setLevel(max(logging.getLevelName(level), logging.ERROR))
    # One line per webhook request is for debugging; the receiver's own counters are at /stats.
    logging.getLogger("aiohttp.access").setLevel(max(logging.getLevelName(level), logging.WARNING))
