"""How records on Kafka become rows of the ClickHouse tables: one `TableSpec` per table.

`events` takes the raw input topics; the other tables take the stream processors' outputs (see
schemas/outputs.py), each written as the record's absolute value so that `FINAL` keeps one right row.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from pipeline.sink import Row, TableSpec
from schemas import CanonicalEvent, Topics, decode_message
from schemas.outputs import Alert, SlaRecord, WindowValue, decode_outputs

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
)


def events_spec(clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000) -> TableSpec:
    """Raw canonical events into `events`. Lines that break the contract are left to the stream
    processors, which dead-letter them; this sink stores what is valid and counts nothing twice."""

    def rows_of(value: bytes) -> list[Row]:
        ingested_at = clock_ms()
        return [
            (*(getattr(e, name) for name in CanonicalEvent.__struct_fields__), ingested_at)
            for e in decode_message(value)
            if isinstance(e, CanonicalEvent)
        ]

    return TableSpec("events", EVENT_COLUMNS, rows_of)


def engagement_minute_spec() -> TableSpec:
    """Window values (not the rolling totals, which SQL recomputes from the minutes) into
    `engagement_minute`; `events` orders the versions, as counts within a window only grow."""

    def rows_of(value: bytes) -> list[Row]:
        return [
            (
                w.platform,
                w.community_id,
                w.post_id,
                w.minute_ms // 1000,
                w.likes,
                w.unlikes,
                w.comments,
                w.reposts,
                w.unique_engagers,
                w.score,
                w.likes + w.unlikes + w.comments + w.reposts,
            )
            for w in decode_outputs(value)
            if isinstance(w, WindowValue)
        ]

    return TableSpec("engagement_minute", ENGAGEMENT_COLUMNS, rows_of)


def comment_sla_spec() -> TableSpec:
    """Response clocks into `comment_sla`; `stage` (0 waiting, 1 breached, 2 answered or deleted) orders
    the versions, so the latest state wins whatever order a replay writes them in."""

    def rows_of(value: bytes) -> list[Row]:
        rows: list[Row] = []
        for r in decode_outputs(value):
            if not isinstance(r, SlaRecord):
                continue
            stage = 2 if r.answered_at_ms is not None or r.cancelled else 1 if r.breached else 0
            rows.append(
                (
                    r.platform,
                    r.comment_id,
                    r.community_id,
                    r.post_id,
                    r.commented_at_ms,
                    r.answered_at_ms,
                    r.response_s,
                    int(r.breached),
                    int(r.cancelled),
                    r.sla_s,
                    stage,
                )
            )
        return rows

    return TableSpec("comment_sla", COMMENT_SLA_COLUMNS, rows_of)


def alerts_spec() -> TableSpec:
    """Alerts into `alerts`, one row per `alert_id` under FINAL."""

    def rows_of(value: bytes) -> list[Row]:
        return [
            (
                a.alert_id,
                a.kind.value,
                a.platform,
                a.community_id,
                a.post_id,
                a.comment_id,
                a.author_id,
                a.snippet,
                a.commented_at_ms,
                a.fired_at_ms,
                a.waited_s,
                a.sla_s,
                a.response_s,
            )
            for a in decode_outputs(value)
            if isinstance(a, Alert)
        ]

    return TableSpec("alerts", ALERT_COLUMNS, rows_of)


def sink_routes(topics: Topics) -> list[tuple[TableSpec, tuple[str, ...]]]:
    """Every table the sink fills, with the topics it reads for it."""
    return [
        (events_spec(), (topics.likes, topics.comments, topics.reposts)),
        (engagement_minute_spec(), (topics.engagement,)),
        (comment_sla_spec(), (topics.comment_sla,)),
        (alerts_spec(), (topics.alerts,)),
    ]
