"""The verdict: a store's rows (from a fake query, as the store would return them) against the reference."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pulse.chaos import Expected, judge_store
from tests.unit.chaos.scenes import T0, Scene

MINUTE = T0 - T0 % 60_000


def scene() -> Expected:
    s = Scene()
    s.ev("like", 1, user="a")
    s.comment("m1", 2, user="b")
    s.comment("m2", 3, user="c")
    s.reply("m1", 100)
    s.ev("post", 200)
    return s.expected()


def store_rows(expected: Expected) -> dict[str, list[list[Any]]]:
    """The rows a store that agrees with `expected` returns for each table's query."""
    return {
        "engagement_minute": [
            [*k[:3], k[3], r.likes, r.unlikes, r.comments, r.reposts, r.unique_engagers, r.score]
            for k, r in expected.engagement.items()
        ],
        "comment_sla": [
            [
                *k,
                r.post_id,
                r.commented_at_ms,
                r.sla_seconds,
                r.answered_at_ms,
                r.response_seconds,
                int(r.breached),
                int(r.cancelled),
                r.stage,
            ]
            for k, r in expected.sla.items()
        ],
        "alerts": [
            [
                a,
                r.kind,
                r.post_id,
                r.comment_id,
                r.author_id,
                r.commented_at_ms,
                r.fired_at_ms,
                r.waited_seconds,
                r.sla_seconds,
                r.response_seconds,
            ]
            for a, r in expected.alerts.items()
        ],
    }


class FakeStore:
    def __init__(self, tables: dict[str, list[list[Any]]]) -> None:
        self.tables = tables
        self.asked: list[str] = []

    def __call__(self, sql: str) -> Sequence[Sequence[Any]]:
        self.asked.append(sql)
        table = next(t for t in self.tables if f"FROM {t} FINAL" in sql)
        return self.tables[table]


def test_a_store_that_agrees_is_exact_and_every_table_is_read_under_final() -> None:
    expected = scene()
    store = FakeStore(store_rows(expected))
    verdict = judge_store(expected, store)
    assert verdict.exact, str(verdict)
    assert [t.matched for t in verdict.tables] == [2, 2, 3]
    assert all("FINAL" in sql for sql in store.asked)
    assert "kind IN ('unanswered_comment', 'resolved')" in store.asked[2]


def test_missing_extra_and_different_rows_are_counted_and_shown() -> None:
    expected = scene()
    rows = store_rows(expected)
    rows["engagement_minute"][0][4] += 1  # one like too many
    rows["engagement_minute"].append(["vk", "c1", "ghost", MINUTE, 1, 0, 0, 0, 1, 1.0])
    rows["comment_sla"] = [r for r in rows["comment_sla"] if r[2] != "m2"]
    rows["alerts"][0][6] += 1  # fired a millisecond later
    verdict = judge_store(expected, FakeStore(rows))
    assert not verdict.exact
    minutes, sla, alerts = verdict.tables
    assert (minutes.matched, minutes.different, minutes.extra, minutes.missing) == (1, 1, 1, 0)
    assert (sla.matched, sla.missing) == (1, 1)
    assert (alerts.matched, alerts.different) == (2, 1)
    text = str(verdict)
    assert "different vk/c1/p1/" in text and "likes=2" in text and "likes=1" in text
    assert "extra vk/c1/ghost/" in text
    assert "missing vk/c1/m2: expected post_id='p1'" in text


def test_floats_are_compared_to_a_millionth() -> None:
    expected = scene()
    rows = store_rows(expected)
    rows["comment_sla"][0][7] = (rows["comment_sla"][0][7] or 0.0) + 1e-9
    assert judge_store(expected, FakeStore(rows)).table("comment_sla").exact
    rows["comment_sla"][0][7] = 1.5
    assert not judge_store(expected, FakeStore(rows)).table("comment_sla").exact


def test_a_null_never_equals_a_value() -> None:
    expected = scene()
    rows = store_rows(expected)
    answered = next(r for r in rows["comment_sla"] if r[6] is not None)
    answered[7] = None
    assert judge_store(expected, FakeStore(rows)).table("comment_sla").different == 1
