"""Logging for every entry point: configured once, one line per record, structured fields as key=value."""

from __future__ import annotations

import logging
import sys

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


def configure(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_KeyValueFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # kafka-python logs every reconnect attempt at INFO/WARNING; its errors reach us as exceptions anyway.
    logging.getLogger("kafka").setLevel(max(logging.getLevelName(level), logging.ERROR))
    # One line per webhook request is for debugging; the receiver's own counters are at /stats.
    logging.getLogger("aiohttp.access").setLevel(max(logging.getLevelName(level), logging.WARNING))
