"""`engagement-trend` on engagement minutes whose daily sums are worked out by hand, on the embedded engine.

engagement_minute rows (likes / comments / reposts; interactions are their sum), November 2026, UTC:

  c1  16th 10:00  p1  10 / 2 / 0   the day before the period (3 days to the 20th 13:00): 12
      17th 09:00  p1   5 / 0 / 0   before 13:00, but the period's first day is whole
      17th 20:00  p2   3 / 1 / 1   17th: posts p1 p2, 8 / 1 / 1 = 10
      18th        nothing          0
      19th 10:00  p2   4 / 0 / 0   and an older version of that window with 2 likes: FINAL keeps 4
      20th 12:30  p3   6 / 2 / 0   20th: 8, a day the period's end (13:00) cuts short
      20th 13:00  p3  50 / 0 / 0   at the period's end: outside
  c2  16th 11:00  p7   9 / 0 / 0   only before the period: no rows
  c3  20th 12:59  p8   1 / 0 / 0
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from pipeline.warehouse import ClickHouseSettings, apply_migrations, connect
from pipeline.warehouse.client import connect_reader
from pipeline.warehouse.named_queries import named
from pipeline.warehouse.query_service import execute
from pipeline.warehouse.routes import ENGAGEMENT_COLUMNS
from tests.warehouse_rows import minute_row

END = dt.datetime(2026, 11, 20, 13, 0, tzinfo=dt.UTC)
DAYS = 86_400


def at(day: int, clock: str) -> int:
    """Epoch seconds of November `day`, 2026, HH:MM UTC."""
    hours, minutes = clock.split(":")
    return int(dt.datetime(2026, 11, day, int(hours), int(minutes), tzinfo=dt.UTC).timestamp())


@pytest.fixture(scope="module")
def client(chdb_dsn: str) -> Any:
    settings = ClickHouseSettings(dsn=chdb_dsn, database="engagement_trend")
    writer = connect(settings)
    apply_migrations(writer)
    writer.insert(
        "engagement_minute",
        [
            minute_row("c1", "p1", at(16, "10:00"), 10, 2, 0),
            minute_row("c1", "p1", at(17, "09:00"), 5, 0, 0),
            minute_row("c1", "p2", at(17, "20:00"), 3, 1, 1),
            minute_row("c1", "p2", at(19, "10:00"), 2, 0, 0),  # an older version of the window below
            minute_row("c1", "p2", at(19, "10:00"), 4, 0, 0),
            minute_row("c1", "p3", at(20, "12:30"), 6, 2, 0),
            minute_row("c1", "p3", at(20, "13:00"), 50, 0, 0),
            minute_row("c2", "p7", at(16, "11:00"), 9, 0, 0),
            minute_row("c3", "p8", at(20, "12:59"), 1, 0, 0),
        ],
        column_names=list(ENGAGEMENT_COLUMNS),
    )
    return connect_reader(settings)


def run(
    client: Any, *, end: dt.datetime = END, since_s: float = 3 * DAYS, **options: Any
) -> list[tuple[Any, ...]]:
    query = named("engagement-trend")
    result = execute(client, query.sql, query.bind(end=end, since_s=since_s, **options))
    if result.rows:
        assert result.columns == [
            "community_id", "day", "whole_day", "posts", "likes", "comments", "reposts", "interactions",
            "previous_interactions", "change", "change_pct",
        ]  # fmt: skip
    return [tuple(row) for row in result.rows]


def test_engagement_trend_day_over_day(client: Any) -> None:
    # The period is the 17th 13:00 to the 20th 13:00, widened to the 17th 00:00: days 17-20, the 16th read
    # for the 17th's change. change_pct = change / previous_interactions x 100, NULL after a day of none.
    assert run(client) == [
        ("c1", "2026-11-17", 1, 2, 8, 1, 1, 10, 12, -2, -16.67),  # 10 against 12
        ("c1", "2026-11-18", 1, 0, 0, 0, 0, 0, 10, -10, -100.0),  # no activity: zeros
        ("c1", "2026-11-19", 1, 1, 4, 0, 0, 4, 0, 4, None),  # after a day of none: no percentage
        ("c1", "2026-11-20", 0, 1, 6, 2, 0, 8, 4, 4, 100.0),  # cut short at 13:00 (13:00 itself is out)
        ("c3", "2026-11-17", 1, 0, 0, 0, 0, 0, 0, 0, None),
        ("c3", "2026-11-18", 1, 0, 0, 0, 0, 0, 0, 0, None),
        ("c3", "2026-11-19", 1, 0, 0, 0, 0, 0, 0, 0, None),
        ("c3", "2026-11-20", 0, 1, 1, 0, 0, 1, 0, 1, None),
    ]


def test_a_period_of_whole_days(client: Any) -> None:
    # The 19th 00:00 to the 20th 00:00 is one whole day; the 18th (none) is the day before it. Only c1
    # had activity on the 19th.
    midnight = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
    assert run(client, end=midnight, since_s=DAYS) == [("c1", "2026-11-19", 1, 1, 4, 0, 0, 4, 0, 4, None)]


def test_one_community_and_the_limit(client: Any) -> None:
    assert [row[:2] for row in run(client, community="c1", limit=2)] == [
        ("c1", "2026-11-17"),
        ("c1", "2026-11-18"),
    ]
    assert run(client, community="c2") == []
