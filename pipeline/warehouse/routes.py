"""How records on Kafka become rows of the ClickHouse tables: one `TableSpec` per table.

`events` takes the raw input topics (the stream processors' inputs, and the followers topic, which no
processor reads); the other tables take the stream processors' outputs (see schemas/outputs.py), each
written as the record's absolute value so that `FINAL` keeps one right row.
Records are decoded (so the contract is checked and the right kinds picked) and re-encoded as JSON rows
of the table's input table; its materialized view maps them to the stored columns (0007_wire_inputs.sql).
The `*_COLUMNS` are the stored columns, for code that writes rows directly (tests, backfills).
"""

from __future__ import annotations

import time

from pipeline.warehouse.table_sink import Lines, TableSpec
from schemas import MAX_CLOCK_SKEW_S, CanonicalEvent, ClockLimit, Topics, decode_events, encode_events
from schemas.outputs import Alert, Output, SlaRecord, WindowValue, decode_outputs, encode_outputs

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


def _outputs_spec(table: str, kind: type[Output]) -> TableSpec:
    """The processors' records of one kind into `table`, through `<table>_input`; the topic's other
    kinds (rolling totals beside window values) are not this table's."""

    def lines_of(value: bytes) -> Lines:
        records = [r for r in decode_outputs(value) if isinstance(r, kind)]
        return Lines(len(records), encode_outputs(records))

    return TableSpec(table, lines_of, f"{table}_input")


def engagement_minute_spec() -> TableSpec:
    """Window values (not the rolling totals, which SQL recomputes from the minutes) into
    `engagement_minute`; `events` orders the versions, as counts within a window only grow."""
    return _outputs_spec("engagement_minute", WindowValue)


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
