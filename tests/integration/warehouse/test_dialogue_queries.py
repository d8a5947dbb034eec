"""`dialogue` on one small conversation whose answers are worked out by hand, on the embedded engine, from
the comment events as the platforms send them.

The period is 12:00-13:00 UTC. Community c1, threads (top-level subscriber comments) and their replies,
indented by level; (c) marks a community reply; segments as age band / gender / country:

  t1  12:00 u1 18-24/female/DE          stored twice (a replayed event)
    r1  12:02 (c)
      r2  12:05 u1 18-24/female/DE
        r3  12:06 (c)                                                     thread t1: 3 replies, 2 (c), depth 3
  t2  12:10 u2 25-34/male/US
    r4  12:12 u3 25-34/female/US
      r5  12:20 (c)                                                       thread t2: 2 replies, 1 (c), depth 2
  t3  12:15 u4, no segment fields                                         thread t3: no replies, depth 0
  t4  12:20 u5 18-24/male/DE
    r6  12:25 u6 35-44/-/FR                                               thread t4: 1 reply, 0 (c), depth 1
  t5  12:30 u7, deleted 12:31
    r7  12:32 (c)                                                         thread t5: left out, with its reply
  t6  12:40 u8 18-24/female/DE
    r8  12:41 (c), deleted 12:50
      r9  12:45 u8 18-24/female/DE                                        thread t6: 1 reply (r9), 0 (c), depth 2
  t7  12:58 u9 25-34/male/US
    r11 13:10 (c), after the period                                      thread t7: 1 reply, 1 (c), depth 1
  o1  11:50 u10, before the period
    s1  12:05 u11 45-54/female/FR                                         in no thread of the period
    o2  12:06 (c) answers o1
  a1  12:35 (c), a top-level comment by the community: not a thread
  u13 13:05, after the period

c2 has only likes; c3 one subscriber reply (q1 12:30, no segments) to a thread from 11:00 (q0); c4 only a
community comment (12:10).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from pipeline.warehouse import ClickHouseSettings, apply_migrations, connect
from pipeline.warehouse.client import connect_reader
from pipeline.warehouse.named_queries import named
from pipeline.warehouse.query_service import execute
from pipeline.warehouse.routes import EVENT_COLUMNS

END = dt.datetime(2026, 11, 20, 13, 0, tzinfo=dt.UTC)
NOON = int(dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC).timestamp())
MIN = 60
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


@pytest.fixture(scope="module")
def client(chdb_dsn: str) -> Any:
    settings = ClickHouseSettings(dsn=chdb_dsn, database="dialogue_queries")
    writer = connect(settings)
    apply_migrations(writer)
    writer.insert("events", EVENTS, column_names=list(EVENT_COLUMNS))
    writer.insert("events", EVENTS[:1], column_names=list(EVENT_COLUMNS))  # t1 replayed
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
