"""Which "now" the warehouse is read at: the wall clock for a live stream, the newest data for a replay."""

from __future__ import annotations

import datetime as dt

import pytest

from pipeline.warehouse.data_clock import ReadingTime, newest_data_end, reading_time
from pipeline.warehouse.query_service import QueryResult

WALL = dt.datetime(2026, 12, 7, 9, 30, 12, 300_000, tzinfo=dt.UTC)
WALL_S = dt.datetime(2026, 12, 7, 9, 30, 13, tzinfo=dt.UTC)  # to the next whole second


def test_an_empty_store_is_read_at_the_wall_clock() -> None:
    assert reading_time(None, WALL) == ReadingTime(WALL_S, "wall clock", None)


def test_data_older_than_a_few_minutes_is_read_at_its_own_end() -> None:
    newest = WALL - dt.timedelta(days=17)
    clock = reading_time(newest, WALL)
    assert (clock.now, clock.basis, clock.newest_data_end) == (newest, "newest data", newest)
    just_older = WALL_S - dt.timedelta(seconds=301)
    assert reading_time(just_older, WALL).basis == "newest data"


def test_live_data_is_read_at_the_wall_clock_or_its_end_when_a_little_ahead() -> None:
    recent = WALL_S - dt.timedelta(seconds=300)
    assert (reading_time(recent, WALL).now, reading_time(recent, WALL).basis) == (WALL_S, "wall clock")
    ahead = WALL_S + dt.timedelta(seconds=40)  # the current minute's end
    assert (reading_time(ahead, WALL).now, reading_time(ahead, WALL).basis) == (ahead, "wall clock")


def test_naive_wall_clocks_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        reading_time(None, dt.datetime(2026, 1, 1))  # noqa: DTZ001


@pytest.mark.parametrize(("value", "end"), [(None, None), (0, None), (60, None),
                                             (1_795_176_000, dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC))])  # fmt: skip
def test_newest_data_end_of_the_store(value: int | None, end: dt.datetime | None) -> None:
    assert newest_data_end(lambda sql: QueryResult(["end"], [[value]])) == end
