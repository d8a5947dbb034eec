"""The replay reads a file in blocks of bytes, cut after their last newline: whatever the cuts, the same
lines are sent, dead-lettered with the same line numbers, and counted, as when the lines come one by one."""

from __future__ import annotations

import importlib
import io
from collections.abc import Iterable, Iterator
from unittest import mock

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.replay import ReplayReport, replay
from schemas import DLQ_REASON, DLQ_SOURCE
from tests.events import BASE_TS_MS, wire
from tests.unit.agents.test_publisher_batches import PublisherSettings, RecordingProducer, recording_publisher

replay_module = importlib.import_module("agents.replay")  # `agents.replay` is also the function
EXAMPLES = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NOW_MS = BASE_TS_MS + 3_600_000


def valid(n: int, text_chars: int = 0) -> bytes:
    if text_chars:
        return orjson.dumps(wire("comment", event_id=f"e{n}", ts=BASE_TS_MS + n, text="x" * text_chars))
    return orjson.dumps(wire("like", event_id=f"e{n}", ts=BASE_TS_MS + n, post_id=f"p{n % 3}"))


lines = st.one_of(
    st.integers(0, 60).map(valid),  # duplicates of each other at times
    st.integers(0, 60).map(lambda n: valid(n, text_chars=700)),  # longer than a block
    st.integers(0, 60).map(lambda n: valid(n) + b"\r"),  # CRLF
    st.sampled_from(
        [b"", b"   ", b"not json", b'{"event_id": "x"}', b'{"event_id": "broken", "type": "like"']
    ),
    st.just(orjson.dumps(wire("like", event_id="ahead", ts=NOW_MS + 86_400_000))),  # refused: a day ahead
)


class LinesOnly:
    """A source with `readlines` but no `read` (as `pulse chaos` feeds the replay)."""

    def __init__(self, data: bytes) -> None:
        self._lines = io.BytesIO(data)

    def readlines(self, hint: int = -1) -> list[bytes]:
        return self._lines.readlines(hint)


def run(source: Iterable[bytes]) -> tuple[ReplayReport, RecordingProducer]:
    # No batch leaves by age (the clock stands still): messages do not depend on where blocks were cut.
    publisher, producer = recording_publisher(PublisherSettings(batch_events=7, linger_ms=60_000))
    report = replay(source, publisher, source="f", clock_ms=lambda: NOW_MS)
    report.elapsed_s = 0.0
    return report, producer


def split_lines(data: bytes) -> Iterator[bytes]:
    return iter(io.BytesIO(data))


@EXAMPLES
@given(st.lists(lines, max_size=40), st.booleans(), st.integers(1, 3000))
def test_any_cut_into_blocks_replays_as_line_by_line(
    given: list[bytes], last_newline: bool, block: int
) -> None:
    data = b"\n".join(given) + (b"\n" if last_newline and given else b"")
    with (
        mock.patch.object(replay_module, "BLOCK_BYTES", block),
        mock.patch.object(replay_module, "BLOCK_LINES", 5),
    ):
        from_file, file_sent = run(io.BytesIO(data))
        from_lines, lines_sent = run(split_lines(data))
        from_readlines, readlines_sent = run(LinesOnly(data))
    assert from_file == from_lines == from_readlines
    assert from_file.bytes_read == len(data)
    assert from_file.lines == len(list(split_lines(data)))
    sent = sorted((r.topic, r.partition, r.value, r.key, r.timestamp_ms) for r in file_sent.sent)
    assert sent == sorted((r.topic, r.partition, r.value, r.key, r.timestamp_ms) for r in lines_sent.sent)
    assert sent == sorted((r.topic, r.partition, r.value, r.key, r.timestamp_ms) for r in readlines_sent.sent)


def test_bad_lines_are_dead_lettered_with_their_numbers_across_blocks() -> None:
    given = [valid(1), b"not json", b"", valid(2, text_chars=700), b'{"event_id": "x"}', valid(1), valid(3)]
    with mock.patch.object(replay_module, "BLOCK_BYTES", 64):
        report, producer = run(io.BytesIO(b"\n".join(given)))
    assert (report.lines, report.sent, report.rejected, report.duplicates) == (7, 3, 2, 1)
    dead = [r for r in producer.sent if r.topic == "dead-letters"]
    assert [r.value for r in dead] == [b"not json", b'{"event_id": "x"}']
    assert [dict(r.headers)[DLQ_SOURCE] for r in dead] == [b"f:2", b"f:5"]
    assert dict(dead[0].headers)[DLQ_REASON].startswith(b"line 2: not valid JSON")
