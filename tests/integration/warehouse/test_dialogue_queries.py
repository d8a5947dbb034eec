"""`dialogue` and `response-by-segment` on one small conversation whose answers are worked out by hand, on
the embedded engine: the comment events as the platforms send them, and the `comment_sla` rows the stream
processors make of them (each subscriber comment opens a clock, a community reply to it closes it).

The period is 12:00-13:00 UTC; SLA 10 minutes. Community c1, threads (top-level subscriber comments) and
their replies, indented by level; (c) marks a community reply; segments as age band / gender / country:

  t1  12:00 u1 18-24/female/DE          answered 12:02 by r1 (120 s)     stored twice (a replayed event)
    r1  12:02 (c)
      r2  12:05 u1 18-24/female/DE      answered 12:06 by r3 (60 s)
        r3  12:06 (c)                                                     thread t1: 3 replies, 2 (c), depth 3
  t2  12:10 u2 25-34/male/US            not answered (r5 answers r4)
    r4  12:12 u3 25-34/female/US        answered 12:20 by r5 (480 s)
      r5  12:20 (c)                                                       thread t2: 2 replies, 1 (c), depth 2
  t3  12:15 u4, no segment fields       not answered                      thread t3: no replies, depth 0
  t4  12:20 u5 18-24/male/DE            not answered
    r6  12:25 u6 35-44/-/FR             not answered                      thread t4: 1 reply, 0 (c), depth 1
  t5  12:30 u7, deleted 12:31           cancelled (deleted while waiting)
    r7  12:32 (c)                                                         thread t5: left out, with its reply
  t6  12:40 u8 18-24/female/DE          answered 12:41 by r8 (60 s)
    r8  12:41 (c), deleted 12:50
      r9  12:45 u8 18-24/female/DE      not answered                      thread t6: 1 reply (r9), 0 (c), depth 2
  t7  12:58 u9 25-34/male/US            answered 13:10 by r11 (720 s, past the SLA)
    r11 13:10 (c), after the period                                      thread t7: 1 reply, 1 (c), depth 1
  o1  11:50 u10, before the period      (its row is outside the period)
    s1  12:05 u11 45-54/female/FR       not answered                      in no thread of the period
    o2  12:06 (c) answers o1
  a1  12:35 (c), a top-level comment by the community: not a thread
  u13 13:05, after the period
  x1  12:50, answered 12:55 (300 s): a comment_sla row whose event is missing (erased)

c2 has only likes; c3 one subscriber reply (q1 12:30, no segments, unanswered) to a thread from 11:00 (q0);
c4 only a community comment (12:10).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from pipeline.warehouse import ClickHouseSettings, apply_migrations, connect
from pipeline.warehouse.client import connect_reader
from pipeline.warehouse.named_queries import named
from pipeline.warehouse.query_service import execute
from pipeline.warehouse.routes import COMMENT_SLA_COLUMNS, EVENT_COLUMNS

END = dt.datetime(2026, 11, 20, 13, 0, tzinfo=dt.UTC)
NOON = int(dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC).timestamp())
MIN = 60
SLA_S = 600.0
ADMIN = "admin"
Segment = tuple[str | None, str | None, str | None]
NONE: Segment = (None, None, None)
YOUNG_WOMAN_DE: Segment = ("18-24", "female", "DE")


def at(clock: str) -> int:
    """Epoch seconds of a time of 2026-11-20 written as HH:MM."""
    hours, minutes = clock.split(":")
    return NOON + (int(hours) - 12) * 3600 + int(minutes) * MIN


def comment(
    comment_id: str, clock: str, user: str, segment: Segment = NONE, *, parent: str | None = None,
    community: str = "c1", kind: str = "comment",
) -> list[Any]:  # fmt: skip
    ts = at(clock) * 1000
    age, gender, country = segment
    event_id = f"e-{comment_id}" if kind == "comment" else f"e-{comment_id}-{kind}"
    return [event_id, kind, "vk", community, "p1", user, ts, comment_id, parent, user == ADMIN,
            None if kind == "comment_delete" else "text", age, gender, country, ts]  # fmt: skip


def like(event_id: str, clock: str, community: str) -> list[Any]:
    ts = at(clock) * 1000
    return [event_id, "like", "vk", community, "p1", "u1", ts, None, None, False, None, None, None, None, ts]


def sla(comment_id: str, clock: str, answered: str | None = None, *, cancelled: int = 0,
        community: str = "c1") -> list[Any]:  # fmt: skip
    commented = at(clock)
    answered_s = None if answered is None else at(answered)
    return ["vk", comment_id, community, "p1", commented * 1000,
            None if answered_s is None else answered_s * 1000,
            None if answered_s is None else float(answered_s - commented), 0, cancelled, SLA_S,
            2 if answered is not None or cancelled else 0]  # fmt: skip


EVENTS = [
    comment("t1", "12:00", "u1", YOUNG_WOMAN_DE),
    comment("r1", "12:02", ADMIN, parent="t1"),
    comment("r2", "12:05", "u1", YOUNG_WOMAN_DE, parent="r1"),
    comment("r3", "12:06", ADMIN, parent="r2"),
    comment("t2", "12:10", "u2", ("25-34", "male", "US")),
    comment("r4", "12:12", "u3", ("25-34", "female", "US"), parent="t2"),
    comment("r5", "12:20", ADMIN, parent="r4"),
    comment("t3", "12:15", "u4"),
    comment("t4", "12:20", "u5", ("18-24", "male", "DE")),
    comment("r6", "12:25", "u6", ("35-44", None, "FR"), parent="t4"),
    comment("t5", "12:30", "u7", YOUNG_WOMAN_DE),
    comment("t5", "12:31", "u7", kind="comment_delete"),
    comment("r7", "12:32", ADMIN, parent="t5"),
    comment("t6", "12:40", "u8", YOUNG_WOMAN_DE),
    comment("r8", "12:41", ADMIN, parent="t6"),
    comment("r9", "12:45", "u8", YOUNG_WOMAN_DE, parent="r8"),
    comment("r8", "12:50", ADMIN, kind="comment_delete"),
    comment("t7", "12:58", "u9", ("25-34", "male", "US")),
    comment("r11", "13:10", ADMIN, parent="t7"),
    comment("o1", "11:50", "u10"),
    comment("s1", "12:05", "u11", ("45-54", "female", "FR"), parent="o1"),
    comment("o2", "12:06", ADMIN, parent="o1"),
    comment("a1", "12:35", ADMIN),
    comment("u13", "13:05", "u13", YOUNG_WOMAN_DE),
    like("l1", "12:20", "c2"),
    comment("q0", "11:00", "u20", community="c3"),
    comment("q1", "12:30", "u21", parent="q0", community="c3"),
    comment("c4", "12:10", ADMIN, community="c4"),
]

SLA_ROWS = [
    sla("t1", "12:00", "12:02"),
    sla("r2", "12:05", "12:06"),
    sla("t2", "12:10"),
    sla("r4", "12:12", "12:20"),
    sla("t3", "12:15"),
    sla("t4", "12:20"),
    sla("r6", "12:25"),
    sla("t5", "12:30", cancelled=1),
    sla("t6", "12:40", "12:41"),
    sla("r9", "12:45"),
    sla("t7", "12:58", "13:10"),
    sla("o1", "11:50", "12:06"),
    sla("s1", "12:05"),
    sla("u13", "13:05"),
    sla("x1", "12:50", "12:55"),
    sla("q0", "11:00", community="c3"),
    sla("q1", "12:30", community="c3"),
]


@pytest.fixture(scope="module")
def client(chdb_dsn: str) -> Any:
    settings = ClickHouseSettings(dsn=chdb_dsn, database="dialogue_queries")
    writer = connect(settings)
    apply_migrations(writer)
    writer.insert("events", EVENTS, column_names=list(EVENT_COLUMNS))
    writer.insert("events", EVENTS[:1], column_names=list(EVENT_COLUMNS))  # t1 replayed
    writer.insert("comment_sla", SLA_ROWS, column_names=list(COMMENT_SLA_COLUMNS))
    return connect_reader(settings)


def run(client: Any, name: str, **options: Any) -> list[tuple[Any, ...]]:
    query = named(name)
    result = execute(client, query.sql, query.bind(end=END, since_s=3600, **options))
    return [tuple(row) for row in result.rows]


def test_dialogue(client: Any) -> None:
    result = execute(client, named("dialogue").sql, named("dialogue").bind(end=END, since_s=3600))
    assert result.columns == [
        "community_id", "subscriber_comments", "threads", "threads_answered", "answered_thread_pct",
        "replies_per_thread", "community_replies_per_thread", "mean_depth", "max_depth",
    ]  # fmt: skip
    assert run(client, "dialogue") == [
        # c1: subscriber comments written in the period: t1 r2 t2 r4 t3 t4 r6 t6 r9 t7 s1 = 11 (t1 once
        # though stored twice; t5 deleted; o1 before, u13 after the period; x1 has no event).
        # Threads t1 t2 t3 t4 t6 t7 = 6 (t5 deleted, a1 the community's, s1 a reply); with a community
        # reply: t1, t2 (r5, under a subscriber's reply), t7 (after the period) = 3 of 6 = 50 %.
        # Replies 3 + 2 + 0 + 1 + 1 (r9; r8 deleted) + 1 = 8 -> 8 / 6 = 1.33; by the community
        # 2 + 1 + 0 + 0 + 0 + 1 = 4 -> 4 / 6 = 0.67. Depths 3, 2, 0, 1, 2 (r9 keeps its level under the
        # deleted r8), 1: mean 9 / 6 = 1.5, max 3.
        ("c1", 11, 6, 3, 50.0, 1.33, 0.67, 1.5, 3),
        # c3: a subscriber reply to a thread begun before the period, so no thread of its own: no ratios.
        ("c3", 1, 0, 0, None, None, None, None, None),
        # c4: only the community wrote. c2 (likes only, no comments) has no row.
        ("c4", 0, 0, 0, None, None, None, None, None),
    ]


def test_dialogue_for_one_community(client: Any) -> None:
    assert run(client, "dialogue", community="c3") == [("c3", 1, 0, 0, None, None, None, None, None)]
    assert run(client, "dialogue", community="c2") == []


def test_dialogue_of_a_period_that_ends_before_a_thread_begins(client: Any) -> None:
    # 12:00-12:12: t1 and t2 begin in it; r4 (12:12) is written after its end but counts, since replies
    # are counted whenever they come, as response-rate counts late answers. Subscriber comments written
    # in it: t1, r2, t2, s1 = 4. Threads: t1 (3 replies, 2 by the community, depth 3) and t2 (2 replies,
    # 1 by the community, depth 2): both answered; 5 / 2 = 2.5 replies, 3 / 2 = 1.5 by the community.
    end = END - dt.timedelta(minutes=48)
    query = named("dialogue")
    rows = execute(client, query.sql, query.bind(end=end, since_s=12 * MIN, community="c1")).rows
    assert [tuple(r) for r in rows] == [("c1", 4, 2, 2, 100.0, 2.5, 1.5, 2.5, 3)]


def test_response_by_segment(client: Any) -> None:
    result = execute(client, named("response-by-segment").sql,
                     named("response-by-segment").bind(end=END, since_s=3600))  # fmt: skip
    assert result.columns == [
        "community_id", "dimension", "segment", "comments", "answered", "answered_within_sla",
        "response_rate_pct", "within_sla_pct", "median_s", "p90_s",
    ]  # fmt: skip
    # c1's comments in the period, with their first response (- for none): t1 120, r2 60, t2 -, r4 480,
    # t3 -, t4 -, r6 -, t6 60, r9 -, t7 720 (past the 600 s SLA), s1 -, x1 300 = 12 (t5 deleted, o1 and
    # u13 outside the period). Quantiles are exact: the value at index floor(level x n) of the sorted
    # times, so the median of two is the larger one.
    assert run(client, "response-by-segment") == [
        # 18-24: t1 120, r2 60, t4 -, t6 60, r9 - -> 3 of 5 answered, all within the SLA;
        # sorted 60 60 120: median [1] = 60, p90 [2] = 120.
        ("c1", "age_band", "18-24", 5, 3, 3, 60.0, 60.0, 60.0, 120.0),
        # 25-34: t2 -, r4 480, t7 720 -> 2 of 3, 1 within; sorted 480 720: median [1] = p90 [1] = 720.
        ("c1", "age_band", "25-34", 3, 2, 1, 66.67, 33.33, 720.0, 720.0),
        ("c1", "age_band", "35-44", 1, 0, 0, 0.0, 0.0, None, None),  # r6, unanswered: no time
        ("c1", "age_band", "45-54", 1, 0, 0, 0.0, 0.0, None, None),  # s1
        ("c1", "age_band", "", 2, 1, 1, 50.0, 50.0, 300.0, 300.0),  # t3 (no fields), x1 (no event) 300
        # female: t1 120, r2 60, r4 480, t6 60, r9 -, s1 - -> 4 of 6, all within; sorted 60 60 120 480:
        # median [2] = 120, p90 [3] = 480.
        ("c1", "gender", "female", 6, 4, 4, 66.67, 66.67, 120.0, 480.0),
        ("c1", "gender", "male", 3, 1, 0, 33.33, 0.0, 720.0, 720.0),  # t2 -, t4 -, t7 720
        ("c1", "gender", "", 3, 1, 1, 33.33, 33.33, 300.0, 300.0),  # t3 -, r6 (age only) -, x1 300
        ("c1", "country", "DE", 5, 3, 3, 60.0, 60.0, 60.0, 120.0),  # as 18-24
        ("c1", "country", "FR", 2, 0, 0, 0.0, 0.0, None, None),  # r6, s1
        ("c1", "country", "US", 3, 2, 1, 66.67, 33.33, 720.0, 720.0),  # as 25-34
        ("c1", "country", "", 2, 1, 1, 50.0, 50.0, 300.0, 300.0),  # t3, x1
        # c3: q1, no segment fields, unanswered (q0 is before the period).
        ("c3", "age_band", "", 1, 0, 0, 0.0, 0.0, None, None),
        ("c3", "gender", "", 1, 0, 0, 0.0, 0.0, None, None),
        ("c3", "country", "", 1, 0, 0, 0.0, 0.0, None, None),
    ]


def test_response_by_segment_agrees_with_the_per_community_queries(client: Any) -> None:
    # Each dimension splits the same comments, so its rows add up to response-rate's: c1 has 12 comments,
    # 6 answered (t1 r2 r4 t6 t7 x1), 5 of them within the SLA (all but t7).
    by_segment = run(client, "response-by-segment", community="c1")
    (rate,) = run(client, "response-rate", community="c1")
    assert rate[:4] == ("c1", 12, 6, 5)
    for dimension in ("age_band", "gender", "country"):
        rows = [r for r in by_segment if r[1] == dimension]
        assert (sum(r[3] for r in rows), sum(r[4] for r in rows), sum(r[5] for r in rows)) == rate[1:4]


def test_response_by_segment_for_one_community(client: Any) -> None:
    assert [r[:3] for r in run(client, "response-by-segment", community="c3")] == [
        ("c3", "age_band", ""), ("c3", "gender", ""), ("c3", "country", ""),
    ]  # fmt: skip
    assert run(client, "response-by-segment", community="c2") == []
