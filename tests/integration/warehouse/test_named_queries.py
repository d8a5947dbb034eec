"""Every named query on a small data set whose answers are worked out by hand, on the embedded engine."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from pipeline.warehouse import ClickHouseSettings, apply_migrations, connect
from pipeline.warehouse.client import connect_reader
from pipeline.warehouse.named_queries import catalogue, named
from pipeline.warehouse.query_service import execute
from pipeline.warehouse.routes import ENGAGEMENT_COLUMNS, EVENT_COLUMNS
from tests.warehouse_rows import minute_row

END = dt.datetime(2026, 11, 20, 13, 0, tzinfo=dt.UTC)  # the period is 12:00-13:00
NOON = int(dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC).timestamp())
MIN = 60


def sla_row(comment: str, at_s: int, answered_s: int | None, *, breached: int = 0, cancelled: int = 0,
            community: str = "c1", stage: int | None = None) -> list[Any]:  # fmt: skip
    response = None if answered_s is None else float(answered_s - at_s)
    if stage is None:
        stage = 2 if answered_s is not None or cancelled else breached
    answered_ms = None if answered_s is None else answered_s * 1000
    return [
        "vk",
        comment,
        community,
        "p1",
        at_s * 1000,
        answered_ms,
        response,
        breached,
        cancelled,
        600.0,
        stage,
    ]


@pytest.fixture(scope="module")
def client(chdb_dsn: str) -> Any:
    client = connect(ClickHouseSettings(dsn=chdb_dsn, database="named_queries"))
    apply_migrations(client)
    minutes = [
        minute_row("c1", "p1", NOON + 10 * MIN, 10, 2, 1),
        minute_row("c1", "p1", NOON + 40 * MIN, 5, 0, 0),
        minute_row("c1", "p2", NOON + 30 * MIN, 3, 1, 0),
        minute_row("c2", "p9", NOON + 50 * MIN, 20, 5, 2),
        minute_row("c2", "p9", NOON + 50 * MIN, 4, 1, 0),  # an older version of the same window
        minute_row("c1", "p1", NOON - 30 * MIN, 100, 0, 0),  # before the period
        minute_row("c1", "p3", NOON + 60 * MIN, 50, 0, 0),  # at its end: outside
    ]
    client.insert("engagement_minute", minutes, column_names=list(ENGAGEMENT_COLUMNS))
    client.insert(
        "community_followers",
        [["vk", "c1", NOON, 1000], ["vk", "c1", NOON + 120 * MIN, 2000], ["vk", "c2", NOON - 120 * MIN, 500]],
        column_names=["platform", "community_id", "as_of", "followers"],
    )
    client.insert(
        "post_views",
        [["vk", "c1", "p1", NOON + 30 * MIN, 100], ["vk", "c1", "p1", NOON + 59 * MIN, 200],
         ["vk", "c1", "p2", NOON + 30 * MIN, 10]],
        column_names=["platform", "community_id", "post_id", "as_of", "views"],
    )  # fmt: skip
    comments = [
        sla_row("m1", NOON, NOON + 100),
        sla_row("m2", NOON + 5 * MIN, NOON + 25 * MIN, breached=1),
        sla_row("m3", NOON + 10 * MIN, None, breached=1),
        sla_row("m4", NOON + 55 * MIN, None),  # its deadline (13:05) is after the period
        sla_row("m5", NOON + 20 * MIN, None, cancelled=1),
        sla_row("m6", NOON + 30 * MIN, None),  # waiting ...
        sla_row("m6", NOON + 30 * MIN, NOON + 35 * MIN),  # ... then answered: the later stage wins
        sla_row("m7", NOON + 45 * MIN, None),  # deadline 12:55 passed, not flagged yet
        sla_row("n1", NOON + 15 * MIN, NOON + 16 * MIN, community="c2"),
    ]
    client.insert(
        "comment_sla",
        comments,
        column_names=["platform", "comment_id", "community_id", "post_id", "commented_at", "answered_at",
                      "response_seconds", "breached", "cancelled", "sla_seconds", "stage"],
    )  # fmt: skip
    ts = (NOON + 10 * MIN) * 1000

    def event(
        event_id: str, kind: str, user: str, age: str, gender: str, country: str, at: int = ts
    ) -> list[Any]:
        comment = f"x{event_id}" if kind == "comment" else None
        return [
            event_id,
            kind,
            "vk",
            "c1",
            "p1",
            user,
            at,
            comment,
            None,
            False,
            None,
            age,
            gender,
            country,
            at,
        ]

    events = [
        event("e1", "like", "u1", "18-24", "female", "DE"),
        event("e2", "comment", "u2", "18-24", "female", "DE"),
        event("e3", "repost", "u1", "18-24", "female", "DE"),
        event("e4", "like", "u3", "25-34", "male", "US"),
        event("e0", "like", "u9", "25-34", "male", "US", at=(NOON - 50 * MIN) * 1000),  # an hour before
    ]
    client.insert("events", events, column_names=list(EVENT_COLUMNS))
    client.insert("events", events[:1], column_names=list(EVENT_COLUMNS))  # a replayed event
    # The queries run as analysts' queries run: checked, on a read-only connection of their own.
    return connect_reader(ClickHouseSettings(dsn=chdb_dsn, database="named_queries"))


def run(client: Any, name: str, **options: Any) -> list[dict[str, Any]]:
    query = named(name)
    result = execute(client, query.sql, query.bind(end=END, since_s=3600, **options))
    return [dict(zip(result.columns, row, strict=True)) for row in result.rows]


def test_the_catalogue_holds_every_documented_query() -> None:
    assert set(catalogue()) == {
        "top-posts", "er-by-followers", "er-by-views", "rolling-60m", "first-response", "response-rate",
        "waiting-past-sla", "engagement-by-segment", "engagement-trend", "dialogue", "response-by-segment",
    }  # fmt: skip
    assert all(q.about for q in catalogue().values())


def test_top_posts(client: Any) -> None:
    rows = run(client, "top-posts")
    assert [
        (r["community_id"], r["post_id"], r["likes"], r["comments"], r["reposts"], r["score"]) for r in rows
    ] == [
        ("c2", "p9", 20, 5, 2, 36.0),
        ("c1", "p1", 15, 2, 1, 22.0),
        ("c1", "p2", 3, 1, 0, 5.0),
    ]
    assert [r["post_id"] for r in run(client, "top-posts", community="c1", limit=1)] == ["p1"]


def test_engagement_rate_by_followers(client: Any) -> None:
    rows = run(client, "er-by-followers")
    assert [(r["community_id"], r["posts"], r["interactions"], r["followers"]) for r in rows] == [
        ("c2", 1, 27, 500),
        ("c1", 2, 22, 1000),  # the snapshot after the period is not used
    ]
    assert [(r["er_post_pct"], r["er_day_pct"]) for r in rows] == [(5.4, 129.6), (1.1, 52.8)]


def test_engagement_rate_by_views_names_both_aggregations(client: Any) -> None:
    (row,) = run(client, "er-by-views")
    assert (row["community_id"], row["posts_with_views"], row["interactions"], row["views"]) == (
        "c1",
        2,
        22,
        210,
    )
    assert row["er_view_ratio_of_sums_pct"] == pytest.approx(22 / 210 * 100, abs=1e-4)
    assert row["er_view_mean_of_ratios_pct"] == pytest.approx((18 / 200 + 4 / 10) / 2 * 100, abs=1e-4)


def test_rolling_60_minutes(client: Any) -> None:
    rows = run(client, "rolling-60m", post="p1")
    assert [(r["minute"][11:16], r["likes_60m"], r["comments_60m"], r["reposts_60m"]) for r in rows] == [
        ("12:40", 15, 2, 1),
        ("12:10", 110, 2, 1),  # the hour before 12:10 reaches back to 11:30
    ]


def test_first_response_times(client: Any) -> None:
    rows = run(client, "first-response")
    assert [tuple(r.values()) for r in rows] == [
        ("c1", 3, 533.3, 300.0, 1200.0, 100.0, 1200.0),
        ("c2", 1, 60.0, 60.0, 60.0, 60.0, 60.0),
    ]


def test_response_rate(client: Any) -> None:
    rows = run(client, "response-rate")
    assert [tuple(r.values()) for r in rows] == [("c1", 6, 3, 2, 50.0, 33.33), ("c2", 1, 1, 1, 100.0, 100.0)]


def test_waiting_past_sla(client: Any) -> None:
    rows = run(client, "waiting-past-sla")
    assert [(r["comment_id"], r["waited_s"]) for r in rows] == [("m3", 3000.0), ("m7", 900.0)]


def test_engagement_by_segment(client: Any) -> None:
    rows = run(client, "engagement-by-segment")
    assert [tuple(r.values()) for r in rows] == [
        ("c1", "18-24", "female", "DE", 1, 1, 1, 2),
        ("c1", "25-34", "male", "US", 1, 0, 0, 1),
    ]


def test_queries_cannot_change_data(client: Any) -> None:
    from pipeline import QueryRefused

    with pytest.raises(QueryRefused, match="only reading statements"):
        execute(client, "INSERT INTO post_views VALUES ('vk', 'c1', 'p1', now(), 1)")
