"""What "now" means when reading the warehouse.

For a live stream, now is the wall clock. A replay or a simulation writes event times that are not the
wall clock (last year's backfill, two simulated hours squeezed into a minute), and "the last 30 minutes"
of the wall clock would find nothing there: now is then just after the newest data in the store, as
`pulse query --until latest` has it. Whichever is used is said, so nobody mistakes the one for the other.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pipeline.warehouse.query_service import QueryResult

# Just after the newest data: an engagement minute ends 60 s after it starts; a comment's time is rounded
# up to the next whole second (the named queries' periods are whole seconds, their end excluded).
NEWEST_DATA_END = """
SELECT greatest((SELECT toInt64(toUnixTimestamp(max(minute))) + 60 FROM engagement_minute),
                (SELECT intDiv(toUnixTimestamp64Milli(max(commented_at)), 1000) + 1 FROM comment_sla),
                0)
"""
LIVE_WITHIN_S = 300.0  # newest data at most this far behind the wall clock: the stream is live

Basis = Literal["wall clock", "newest data"]


@dataclass(frozen=True, slots=True)
class ReadingTime:
    """The moment the warehouse is read at, and why that one."""

    now: dt.datetime
    basis: Basis
    newest_data_end: dt.datetime | None  # None: the store holds no data yet


def newest_data_end(query: Callable[[str], QueryResult]) -> dt.datetime | None:
    """Just after the newest engagement minute or comment in the store; None when there is none.
    `query` runs read-only SQL (`run_query` bound to the settings, or a `WarehouseReader`'s `query`)."""
    (row,) = query(NEWEST_DATA_END).rows
    value: Any = row[0]
    if value is None or int(value) <= 60:  # max() of an empty table is the epoch
        return None
    return dt.datetime.fromtimestamp(int(value), dt.UTC)


def reading_time(
    newest: dt.datetime | None, wall: dt.datetime, live_within_s: float = LIVE_WITHIN_S
) -> ReadingTime:
    """The wall clock (to the next whole second) while the newest data is at most `live_within_s` old;
    the end of the newest data when it is older (a replay, a simulation); the wall clock when the store
    is empty."""
    if wall.tzinfo is None:
        raise ValueError("the wall clock must be timezone-aware")
    wall_s = dt.datetime.fromtimestamp(math.ceil(wall.timestamp()), dt.UTC)
    if newest is None:
        return ReadingTime(wall_s, "wall clock", None)
    if (wall_s - newest).total_seconds() > live_within_s:
        return ReadingTime(newest, "newest data", newest)
    # Live: data a little ahead of this machine's clock (a minute's end, clock skew) still counts as now.
    return ReadingTime(max(wall_s, newest), "wall clock", newest)
