"""Replaying canonical NDJSON (a file, or stdin) into Kafka.

Each line is validated on its own: a good line is forwarded as it is (its bytes are already a valid
canonical event, so re-encoding would only cost time), a bad line goes to the dead-letter topic with its
line number and reason, and a line whose `event_id` was already sent in this replay is skipped. Nothing
stops the good lines around a bad one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from agents.publisher import EventPublisher
from schemas import InvalidEvent, dead_letter_headers, parse_line

STAGE = "ingest-replay"


@dataclass(slots=True)
class ReplayReport:
    lines: int = 0
    sent: int = 0
    rejected: int = 0
    duplicates: int = 0
    bytes_read: int = 0
    elapsed_s: float = 0.0
    stopped_early: bool = False
    newest_event_ms: int = 0  # the newest event time sent: where a replayed file ends in event time

    @property
    def events_per_s(self) -> float:
        return self.sent / self.elapsed_s if self.elapsed_s > 0 else 0.0


def replay(
    lines: Iterable[bytes],
    publisher: EventPublisher,
    *,
    source: str,
    max_remembered_ids: int = 5_000_000,
    on_progress: Callable[[ReplayReport], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> ReplayReport:
    """Sends every valid line, dead-letters every invalid one, and flushes before returning.

    `max_remembered_ids` bounds the memory spent on duplicate detection; past it, the oldest ids are
    forgotten (the stream processors deduplicate again on `event_id`).
    """
    report = ReplayReport()
    # Insertion-ordered, so the oldest ids are the ones forgotten when the bound is reached.
    seen: dict[str, None] = {}
    started = time.perf_counter()
    publish, poll = publisher.publish, publisher.poll
    line_no = bytes_read = sent = duplicates = newest = 0
    for line_no, raw in enumerate(lines, start=1):
        bytes_read += len(raw)
        line = raw.strip()
        if not line:
            continue
        try:
            event = parse_line(line)
        except InvalidEvent as exc:
            report.rejected += 1
            reason = exc.at_line(line_no).reason
            publisher.dead_letter(
                line, dead_letter_headers(STAGE, "invalid_event", reason, f"{source}:{line_no}")
            )
            continue
        event_id = event.event_id
        if event_id in seen:
            duplicates += 1
            continue
        seen[event_id] = None
        publish(event, line)
        if event.ts_ms > newest:
            newest = event.ts_ms
        sent += 1
        if line_no & 4095 == 0:
            poll()
            while len(seen) > max_remembered_ids:
                del seen[next(iter(seen))]
            report.lines, report.bytes_read, report.sent, report.duplicates = (
                line_no,
                bytes_read,
                sent,
                duplicates,
            )
            if on_progress is not None:
                on_progress(report)
            if should_stop():
                report.stopped_early = True
                break
    report.lines, report.bytes_read, report.sent, report.duplicates = line_no, bytes_read, sent, duplicates
    report.newest_event_ms = newest
    publisher.flush()
    report.elapsed_s = time.perf_counter() - started
    if on_progress is not None:
        on_progress(report)
    return report
