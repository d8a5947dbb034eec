"""Replaying canonical NDJSON (a file, or stdin) into Kafka.

The input is read in blocks of about `BLOCK_BYTES` (from a file, as bytes cut after their last newline, not
split into lines), and a block whose lines are all valid is decoded in one compiled pass (`parse_lines`)
and handed to the publisher at once (`publish_many`), which is the usual case. A block holding a bad line
is taken line by line: each line judged on its own, a bad line sent to the dead-letter topic with its line
number and reason, its good neighbours published. A line whose `event_id` was already sent in this replay
is skipped. Nothing stops the good lines around a bad one. An event stamped further ahead of the wall
clock than the allowed skew is a bad line too (`schemas.ClockLimit`): a block holding one is taken line by
line.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from operator import attrgetter

from agents.publisher import EventPublisher
from schemas import (
    MAX_CLOCK_SKEW_S,
    CanonicalEvent,
    ClockLimit,
    InvalidEvent,
    dead_letter_headers,
    parse_line,
)
from schemas.validation import parse_lines

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


BLOCK_BYTES = 256 * 1024  # read at once from a file; about 1,300 events of 200 bytes
BLOCK_LINES = 1_024  # taken at once from a source that is not a file
_TS = attrgetter("ts")  # an event's time in epoch milliseconds, without the property call


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def replay(
    lines: Iterable[bytes],
    publisher: EventPublisher,
    *,
    source: str,
    max_remembered_ids: int = 5_000_000,
    on_progress: Callable[[ReplayReport], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    max_clock_skew_s: float = MAX_CLOCK_SKEW_S,
    clock_ms: Callable[[], int] = wall_clock_ms,
) -> ReplayReport:
    """Sends every valid line, dead-letters every invalid one (and every event stamped more than
    `max_clock_skew_s` ahead of `clock_ms()`), and flushes before returning.

    `max_remembered_ids` bounds the memory spent on duplicate detection; past it, the oldest ids are
    forgotten (the stream processors deduplicate again on `event_id`).
    """
    report = ReplayReport()
    # Insertion-ordered, so the oldest ids are the ones forgotten when the bound is reached.
    seen: dict[str, None] = {}
    started = time.perf_counter()
    publish_many = publisher.publish_many
    line_no = bytes_read = sent = duplicates = newest = 0
    for block in _blocks(lines):
        data = block.data
        bytes_read += block.size
        limit = ClockLimit.of(clock_ms(), max_clock_skew_s)
        try:
            parsed: list[CanonicalEvent] | None = parse_lines(data)
        except InvalidEvent:
            parsed = None
        if parsed is None or (parsed and max(map(_TS, parsed)) > limit.latest_ms):
            events = _line_by_line(block.lines(), line_no, publisher, source, report, limit)  # which, why
        else:
            events = parsed
        line_no += block.count
        # The events whose id was not seen before, nor earlier in the block; now seen.
        fresh = [e for e in events if e.event_id not in seen and not seen.setdefault(e.event_id)]
        if fresh:
            publish_many(fresh)
            newest = max(newest, max(map(_TS, fresh)))
        duplicates += len(events) - len(fresh)
        sent += len(fresh)
        publisher.poll()
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
    report.newest_event_ms = newest
    publisher.flush()
    report.elapsed_s = time.perf_counter() - started
    if on_progress is not None:
        on_progress(report)
    return report


@dataclass(frozen=True, slots=True)
class _Block:
    """Whole lines of the input, as one NDJSON text."""

    data: bytes
    count: int  # lines, blank ones included
    size: int  # bytes of the input they were
    split: list[bytes] | None = None  # the lines, when they came one by one

    def lines(self) -> list[bytes]:
        if self.split is not None:
            return self.split
        lines = self.data.split(b"\n")
        if self.data.endswith(b"\n"):
            lines.pop()
        return lines


def _blocks(lines: Iterable[bytes]) -> Iterator[_Block]:
    # A file or stdin: read as it is, cut after a block's last newline.
    if isinstance(lines, io.BufferedIOBase):
        yield from _read_blocks(lines.read)
        return
    readlines = getattr(lines, "readlines", None)
    if callable(readlines):
        chunks: Iterator[list[bytes]] = iter(lambda: readlines(BLOCK_BYTES), [])
    else:
        remaining = iter(lines)
        chunks = iter(lambda: list(islice(remaining, BLOCK_LINES)), [])
    for block in chunks:
        # Lines may come with their newlines or without: the blank lines this makes are skipped.
        data = b"\n".join(block)
        yield _Block(data, len(block), len(data) - len(block) + 1, block)


def _read_blocks(read: Callable[[int], bytes]) -> Iterator[_Block]:
    """Blocks of about `BLOCK_BYTES` of a binary stream, without splitting it into lines (which would cost
    more than decoding them, a bytes object a line)."""
    started: list[bytes] = []  # the start of a line that a read did not finish
    while chunk := read(BLOCK_BYTES):
        end = chunk.rfind(b"\n") + 1
        if end == 0:
            started.append(chunk)
            continue
        data = b"".join((*started, chunk[:end])) if started else chunk[:end]
        started = [chunk[end:]] if end < len(chunk) else []
        yield _Block(data, data.count(b"\n"), len(data))
    if started:  # the last line, without a newline
        data = b"".join(started)
        yield _Block(data, data.count(b"\n") + 1, len(data))


def _line_by_line(
    block: list[bytes],
    lines_before: int,
    publisher: EventPublisher,
    source: str,
    report: ReplayReport,
    limit: ClockLimit,
) -> list[CanonicalEvent]:
    """The block's valid events, in order; its invalid lines dead-lettered and counted in `report`."""
    events = []
    for line_no, raw in enumerate(block, start=lines_before + 1):
        line = raw.strip()
        if not line:
            continue
        try:
            event = parse_line(line)
            refused = limit.refusal(event)
            if refused is not None:
                raise refused
            events.append(event)
        except InvalidEvent as exc:
            report.rejected += 1
            reason = exc.at_line(line_no).reason
            publisher.dead_letter(line, dead_letter_headers(STAGE, exc.code, reason, f"{source}:{line_no}"))
    return events
