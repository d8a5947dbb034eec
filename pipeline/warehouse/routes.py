"""How records on Kafka become rows of the ClickHouse tables: one `TableSpec` per table.

`events` takes the raw input topics (the stream processors' inputs, and the followers topic, which no
processor reads); the other tables take the stream processors' outputs (see schemas/outputs.py), each
written as the record's absolute value so that `FINAL` keeps one right row.
Records become JSON rows of the table's input table; its materialized view maps them to the stored columns
(0007_wire_inputs.sql). Events are decoded (so the contract is checked) and re-encoded, unless their
publisher marked them canonical. The processors' outputs are stored as they came when every line is of a
kind the topic is known to carry, and the server checks each row (see `_outputs_spec`); anything else is
decoded, so that its bad lines are dead-lettered with the reason.
The `*_COLUMNS` are the stored columns, for code that writes rows directly (tests, backfills).
"""

from __future__ import annotations

import time

from pipeline.warehouse.table_sink import Lines, TableSpec
from schemas import MAX_CLOCK_SKEW_S, CanonicalEvent, ClockLimit, Topics, decode_events, encode_events
from schemas.outputs import (
    Alert,
    Output,
    RollingValue,
    SlaRecord,
    WindowValue,
    decode_outputs,
    encode_outputs,
)

EVENT_COLUMNS = (*CanonicalEvent.__struct_fields__, "ingested_at")
ENGAGEMENT_COLUMNS = (
    "platform",
    "community_id",
    "post_id",
    "minute",
    "likes",
    "unlikes",
    "comments",
    "reposts",
    "unique_engagers",
    "score",
    "events",
)
COMMENT_SLA_COLUMNS = (
    "platform",
    "comment_id",
    "community_id",
    "post_id",
    "commented_at",
    "answered_at",
    "response_seconds",
    "breached",
    "cancelled",
    "sla_seconds",
    "stage",
)
ALERT_COLUMNS = (
    "alert_id",
    "kind",
    "platform",
    "community_id",
    "post_id",
    "comment_id",
    "author_id",
    "snippet",
    "commented_at",
    "fired_at",
    "waited_seconds",
    "sla_seconds",
    "response_seconds",
    "observed",
    "expected",
)


def events_spec(max_clock_skew_s: float = MAX_CLOCK_SKEW_S) -> TableSpec:
    """Raw canonical events into `events`, through `events_input`. Lines that break the contract are left
    to the stream processors, which dead-letter them; this sink stores what is valid (re-encoded in the
    canonical form, so `ts` is always epoch milliseconds) and counts nothing twice; like the processors,
    it leaves out events stamped more than `max_clock_skew_s` ahead of its clock. A message marked
    canonical by its publisher (as community-pulse's publishers mark all of theirs, having checked the
    clock themselves) is stored as it came: decoding and re-encoding it would give the same bytes, for
    about 15% of the loader's CPU."""

    def lines_of(value: bytes) -> Lines:
        events, _ = decode_events(value, ClockLimit.of(time.time_ns() // 1_000_000, max_clock_skew_s))
        return Lines(len(events), encode_events(events))

    return TableSpec("events", lines_of, "events_input", takes_canonical=True)


def line_start(kind: type[Output]) -> bytes:
    """How every line of `kind` begins as `encode_outputs` writes it: msgspec puts the tag first."""
    config = kind.__struct_config__
    return b'{"' + str(config.tag_field).encode() + b'":"' + str(config.tag).encode() + b'",'


def _outputs_spec(table: str, kind: type[Output], others: tuple[type[Output], ...] = ()) -> TableSpec:
    """The processors' records of `kind` into `table`, through `<table>_input`; the topic's `others`
    (rolling totals beside window values) are not this table's.

    The processors write these topics with `encode_outputs`: one complete record a line, every field
    present, tag first. Decoding and re-encoding such a value gives back its own bytes (it was ~20% of the
    loader's CPU), so a value whose every line starts with the tag of `kind` (or of `others`, whose lines
    are cut out) is stored as it came, and the server is the check: a line that is not JSON, has a field
    of the wrong type, or lacks a field (`complete_rows`) fails the insert, and the sink dead-letters its
    record with the server's reason. A value with any other line is decoded: its lines of other kinds are
    skipped and an undecodable one dead-letters it, as before."""
    ours = line_start(kind)
    theirs = tuple(line_start(other) for other in others)

    def lines_of(value: bytes) -> Lines:
        rows = value.count(b"\n")
        if rows and value.endswith(b"\n"):
            kept = _lines_starting(value, ours)
            if kept == rows:
                return Lines(rows, value)
            if kept + sum(_lines_starting(value, start) for start in theirs) == rows:
                lines = [line for line in value.split(b"\n") if line.startswith(ours)]
                return Lines(kept, b"\n".join(lines) + b"\n" if lines else b"")
        records = [r for r in decode_outputs(value) if isinstance(r, kind)]
        return Lines(len(records), encode_outputs(records))

    return TableSpec(table, lines_of, f"{table}_input", complete_rows=True)


def _lines_starting(value: bytes, start: bytes) -> int:
    """Lines of `value` (which ends in a newline) beginning with `start`, counted in compiled code."""
    return value.startswith(start) + value.count(b"\n" + start)


def engagement_minute_spec() -> TableSpec:
    """Window values (not the rolling totals, which SQL recomputes from the minutes) into
    `engagement_minute`; `events` orders the versions, as counts within a window only grow."""
    return _outputs_spec("engagement_minute", WindowValue, others=(RollingValue,))


def comment_sla_spec() -> TableSpec:
    """Response clocks into `comment_sla`; `stage` (0 waiting, 1 breached, 2 answered or deleted) orders
    the versions, so the latest state wins whatever order a replay writes them in."""
    return _outputs_spec("comment_sla", SlaRecord)


def alerts_spec() -> TableSpec:
    """Alerts into `alerts`, one row per `alert_id` under FINAL."""
    return _outputs_spec("alerts", Alert)


def sink_routes(
    topics: Topics, max_clock_skew_s: float = MAX_CLOCK_SKEW_S
) -> list[tuple[TableSpec, tuple[str, ...]]]:
    """Every table the sink fills, with the topics it reads for it."""
    return [
        (events_spec(max_clock_skew_s), (*topics.processor_inputs, topics.followers)),
        (engagement_minute_spec(), (topics.engagement,)),
        (comment_sla_spec(), (topics.comment_sla,)),
        (alerts_spec(), (topics.alerts,)),
    ]
