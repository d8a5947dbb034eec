"""How records on Kafka become rows of the ClickHouse tables: one `TableSpec` per table."""

from __future__ import annotations

import time
from collections.abc import Callable

from pipeline.sink import Row, TableSpec
from schemas import CanonicalEvent, decode_message

EVENT_COLUMNS = (*CanonicalEvent.__struct_fields__, "ingested_at")


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
