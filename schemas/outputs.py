"""What the stream processors emit, and the sinks and the alert channel consume.

Every record is absolute, never an increment: a window's counts so far, a comment's SLA state so far, an
alert with a stable id. A record emitted twice (after a crash, a replay or a rebalance) therefore
overwrites its earlier copy downstream instead of adding to it; that is how at-least-once processing gives
exactly-once results. Records travel as NDJSON like events do, each line tagged by its `record` type.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from enum import StrEnum

import msgspec


class AlertKind(StrEnum):
    AT_RISK = "at_risk"
    UNANSWERED = "unanswered_comment"
    RESOLVED = "resolved"
    ENGAGEMENT_SPIKE = "engagement_spike"  # a post draws far more than the community's posts of its age
    SOURCE_QUIET = "source_quiet"  # a community's events stopped arriving (live, wall clock)
    SOURCE_RECOVERED = "source_recovered"  # ... and came back


class WindowValue(msgspec.Struct, frozen=True, tag="minute", tag_field="record"):
    """One post's engagement in one event-time minute (`minute_ms` = its start, UTC epoch ms)."""

    platform: str
    community_id: str
    post_id: str
    minute_ms: int
    likes: int
    unlikes: int
    comments: int
    reposts: int
    unique_engagers: int
    score: float


class SpanTotals(msgspec.Struct, frozen=True):
    likes: int
    unlikes: int
    comments: int
    reposts: int
    score: float


class RollingValue(msgspec.Struct, frozen=True, tag="rolling", tag_field="record"):
    """One post's totals over the spans ending at `as_of_ms` (the stream's event time): "5m", "1h", "24h"."""

    platform: str
    community_id: str
    post_id: str
    as_of_ms: int
    spans: dict[str, SpanTotals]


class SlaRecord(msgspec.Struct, frozen=True, tag="comment_sla", tag_field="record"):
    """The state of one subscriber comment's response clock."""

    platform: str
    comment_id: str
    community_id: str
    post_id: str
    author_id: str
    commented_at_ms: int
    sla_s: float
    answered_at_ms: int | None
    breached: bool  # no community reply within the SLA
    cancelled: bool  # the comment was deleted while waiting

    @property
    def response_s(self) -> float | None:
        return None if self.answered_at_ms is None else (self.answered_at_ms - self.commented_at_ms) / 1000


class Alert(msgspec.Struct, frozen=True, tag="alert", tag_field="record"):
    """An alert for the ops channel. A comment's alert has `alert_id` = "<platform>:<community>:<comment>:
    <kind>": one per comment and kind, so a redelivered alert is recognisable. `fired_at_ms` is the moment
    it became true (the deadline, or the reply), in event time, so the same input always gives the same
    alerts. Alerts about a post or a whole community leave the comment fields empty and carry the figures
    that raised them in `observed` and `expected` (see `AlertKind`); their ids name their episode."""

    alert_id: str
    kind: AlertKind
    platform: str
    community_id: str
    post_id: str
    comment_id: str
    author_id: str
    snippet: str
    commented_at_ms: int
    fired_at_ms: int
    waited_s: float
    sla_s: float
    response_s: float | None = None
    observed: float | None = None
    expected: float | None = None


class PartitionStats(msgspec.Struct, frozen=True, tag="stats", tag_field="record"):
    """A processor partition's counters since its state began (they survive restarts)."""

    partition: int
    events: int
    late_events: int  # older than the allowed lateness: counted here, in no window
    duplicate_events: int
    rejected_lines: int  # sent to the dead-letter topic
    waiting_comments: int
    watermark_ms: int
    emitted_at_ms: int  # processing time (wall clock)


Output = WindowValue | RollingValue | SlaRecord | Alert | PartitionStats

_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(Output)


def encode_outputs(records: Iterable[Output]) -> bytes:
    return _ENCODER.encode_lines(records)


def encode_output_messages(records: Iterable[Output], max_bytes: int) -> list[bytes]:
    """`records` as NDJSON messages of at most `max_bytes` each, cut between lines (a line longer than that
    goes alone): the windows a batch touched, or the records of one input message of many events, can
    outgrow a Kafka message."""
    data = encode_outputs(records)
    messages = []
    start = 0
    while len(data) - start > max_bytes:
        cut = data.rfind(b"\n", start, start + max_bytes) + 1  # after the last whole line that fits
        if cut <= start:
            cut = data.index(b"\n", start) + 1
        messages.append(data[start:cut])
        start = cut
    if start < len(data):
        messages.append(data[start:])
    return messages


def decode_outputs(value: bytes) -> Iterator[Output]:
    """Raises `msgspec.DecodeError`/`ValidationError` on bytes that are not processor output."""
    for line in value.split(b"\n"):
        if line.strip():
            yield _DECODER.decode(line)
