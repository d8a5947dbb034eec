"""The simulator is reproducible and looks like real community traffic."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from agents import Simulator, SimulatorSettings
from agents.simulator import mean_daily_cycle
from schemas import EventType, encode_event
from schemas.audience import AudienceSnapshot, read_snapshots


def generate(count: int, **settings: object) -> list[bytes]:
    return [encode_event(e) for e in Simulator(SimulatorSettings(**settings)).events(count=count)]  # type: ignore[arg-type]


def test_same_seed_same_events_other_seed_other_events() -> None:
    assert generate(2000, seed=7) == generate(2000, seed=7)
    assert generate(2000, seed=7) != generate(2000, seed=8)


def test_cli_writes_identical_files_for_one_seed(tmp_path: Path) -> None:
    for name in ("a", "b"):
        subprocess.run(
            [sys.executable, "-m", "pulse", "simulate", "--seed", "7", "--events", "1000", "--out", str(tmp_path / f"{name}.ndjson")],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
    a = (tmp_path / "a.ndjson").read_bytes()
    assert a == (tmp_path / "b.ndjson").read_bytes()
    assert a.count(b"\n") == 1000


def test_traffic_shape() -> None:
    events = list(Simulator(SimulatorSettings(communities=4, seed=3, answer_share=0.6)).events(count=40_000))
    kinds = Counter(e.type for e in events)
    assert kinds[EventType.LIKE] > kinds[EventType.COMMENT] > kinds[EventType.REPOST] > 0
    assert [e.ts_ms for e in events] == sorted(e.ts_ms for e in events), "events come in event-time order"

    comments = {e.comment_id: e for e in events if e.type is EventType.COMMENT}
    answers = [e for e in comments.values() if e.by_community]
    subscriber = [e for e in comments.values() if not e.by_community]
    assert answers and all(a.parent_id in comments and a.ts_ms > comments[a.parent_id].ts_ms for a in answers)
    answered = {a.parent_id for a in answers}
    assert 0 < len(answered) < len(subscriber), "some comments are answered, some are not"
    assert any(c.parent_id for c in subscriber), "subscribers reply to each other in threads"

    many_posts = Simulator(SimulatorSettings(communities=4, seed=3, posts_per_community_per_hour=60)).events(
        count=40_000
    )
    per_post = Counter(e.post_key for e in many_posts).most_common()
    assert len(per_post) > 40
    top_share = sum(n for _, n in per_post[: len(per_post) // 10]) / 40_000
    assert top_share > 0.3, f"the top 10% of posts should draw a large share, got {top_share:.2f}"

    countries_by_community = {c: Counter(e.country for e in events if e.community_id == c).most_common(1)[0][0]
                              for c in {e.community_id for e in events}}  # fmt: skip
    assert len(set(countries_by_community.values())) > 1, "audiences differ between communities"


@pytest.mark.parametrize("hour", [8, 20])  # the lull and the peak of the daily cycle
def test_the_rate_asked_for_is_the_mean_rate_of_a_short_run_at_any_hour(hour: int) -> None:
    """`pulse run --rate 2000` delivered about 500 events/s in the morning: the daily cycle scaled the
    whole run down. The cycle now shapes the run around the rate asked for, follow-ups included."""
    start = datetime(2026, 1, 1, hour, tzinfo=UTC)
    span_s = 2 * 3600
    sim = Simulator(SimulatorSettings(communities=3, events_per_sim_s=5.0, seed=2), start, span_s=span_s)
    events = list(sim.events(until_ms=int(start.timestamp() * 1000 + span_s * 1000)))
    assert len(events) / span_s == pytest.approx(5.0, rel=0.03)
    first, last = (sum(1 for e in events if (e.ts_ms - events[0].ts_ms) // 3_600_000 == h) for h in (0, 1))
    assert (first < last) == (hour == 8), (
        "the cycle still shapes the run: rising after 08:00, falling at 20:00"
    )


def test_over_a_whole_day_the_cycle_averages_out() -> None:
    assert mean_daily_cycle(0, 86_400_000) == pytest.approx(1.0)
    assert mean_daily_cycle(8 * 3_600_000, 8 * 3_600_000) == pytest.approx(0.2)


def test_people_follow_and_unfollow_the_communities() -> None:
    events = list(Simulator(SimulatorSettings(communities=3, seed=4, follow_share=0.05)).events(count=20_000))
    follows = [e for e in events if e.type in (EventType.FOLLOW, EventType.UNFOLLOW)]
    organic = sum(1 for e in events if not (e.type is EventType.COMMENT and e.by_community)
                  and e.type is not EventType.COMMENT_DELETE)  # fmt: skip
    assert len(follows) / organic == pytest.approx(0.05, rel=0.15)
    kinds = Counter(e.type for e in follows)
    assert kinds[EventType.FOLLOW] > kinds[EventType.UNFOLLOW] > 0, "communities grow, and lose some"
    assert {e.post_id for e in follows} == {"-"} and {e.community_id for e in follows} == {"c1", "c2", "c3"}
    assert all(e.age_band is None and e.country is None for e in follows), "the platforms send no segment"
    assert not any(
        e.type in (EventType.FOLLOW, EventType.UNFOLLOW)
        for e in Simulator(SimulatorSettings(seed=4, follow_share=0)).events(count=5_000)
    )


def test_the_audience_snapshot_agrees_with_the_events() -> None:
    sim = Simulator(SimulatorSettings(communities=3, seed=6, follow_share=0.05))
    before = {s.community_id: s.count for s in sim.audience() if s.kind == "followers"}
    events = list(sim.events(count=10_000))
    snapshots = sim.audience()
    assert {s.as_of_ms for s in snapshots} == {events[-1].ts_ms // 60_000 * 60_000}

    followers = {s.community_id: s.count for s in snapshots if s.kind == "followers"}
    moved = Counter()  # type: ignore[var-annotated]
    for e in events:
        moved[e.community_id] += {EventType.FOLLOW: 1, EventType.UNFOLLOW: -1}.get(e.type, 0)
    assert followers == {c: before[c] + moved[c] for c in before}
    assert all(n >= 5 * 5_000 for n in before.values()), "a starting audience of its own, most never engaging"

    views = {(s.community_id, s.post_id): s.count for s in snapshots if s.kind == "views"}
    interactions = Counter(
        (e.community_id, e.post_id) for e in events
        if e.type in (EventType.LIKE, EventType.COMMENT, EventType.REPOST) and not e.by_community
    )  # fmt: skip
    assert set(views) == set(interactions)
    for post, n in interactions.items():
        assert 15 * n - 1 <= views[post] <= 60 * n + 1, "views are interactions times 15-60"


def test_asking_for_the_audience_changes_no_event() -> None:
    quiet = Simulator(SimulatorSettings(seed=8))
    asked = Simulator(SimulatorSettings(seed=8))
    first = [encode_event(e) for e in quiet.events(count=3_000)]
    stream = asked.events(count=3_000)
    second = []
    for i, event in enumerate(stream):
        second.append(encode_event(event))
        if i % 500 == 0:
            asked.audience()
    assert first == second


def test_cli_writes_the_audience_that_goes_with_the_file(tmp_path: Path) -> None:
    events, audience = tmp_path / "events.ndjson", tmp_path / "audience.ndjson"
    subprocess.run(
        [sys.executable, "-m", "pulse", "simulate", "--seed", "7", "--events", "3000", "--communities", "2",
         "--out", str(events), "--audience-out", str(audience)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    snapshots = list(read_snapshots(audience.read_bytes().splitlines(keepends=True), "ndjson"))
    assert all(isinstance(s, AudienceSnapshot) for s in snapshots)
    assert sorted(s.community_id for s in snapshots if s.kind == "followers") == ["c1", "c2"]  # type: ignore[union-attr]
    posts = {(e["community_id"], e["post_id"]) for e in map(orjson.loads, events.read_bytes().splitlines())
             if e["type"] in ("like", "repost")}  # fmt: skip
    assert posts <= {(s.community_id, s.post_id) for s in snapshots if s.kind == "views"}  # type: ignore[union-attr]
