"""Engagement spikes, through the partition processor as the worker drives it: a community whose posts
draw what their age predicts, a few that do not."""

from __future__ import annotations

from collections.abc import Iterator

from pipeline.stream.partition import PartitionProcessor, ProcessingRules
from pipeline.stream.sla import SlaPolicy
from pipeline.stream.spikes import AGE_BUCKET_ENDS_MS, AgeCurve, SpikeRules
from schemas import CanonicalEvent, Topics, encode_message
from schemas.outputs import Alert, AlertKind

TOPICS = Topics()
MIN = 60_000
HOUR = 60 * MIN
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
WALL_MS = T0 + 30 * 86_400_000
RULES = ProcessingRules(allowed_lateness_ms=MIN, sla=SlaPolicy(default_s=3_600), spikes=SpikeRules())


def per_minute(post: str, published_min: int, popularity: float, minute: int) -> int:
    """Events a post draws in the minute `minute`: its popularity, halved every hour of its age."""
    age = minute - published_min
    return 0 if age < 0 else int(popularity * 4 * 0.5 ** (age / 60) + 0.5)


def traffic(
    hours: int, posts: dict[str, tuple[int, float]], bursts: dict[str, tuple[int, int]]
) -> Iterator[list[CanonicalEvent]]:
    """One list of events per minute. `posts`: post -> (published minute, popularity); `bursts`: post ->
    (minute it starts, events per minute for 10 minutes)."""
    for minute in range(hours * 60):
        events = []
        for post, (published, popularity) in posts.items():
            count = per_minute(post, published, popularity, minute)
            start, extra = bursts.get(post, (-100, 0))
            if start <= minute < start + 10:
                count += extra
            for i in range(count):
                kind = "repost" if i % 5 == 4 else "like"
                events.append(
                    CanonicalEvent(
                        f"{post}-{minute}-{i}", kind, "vk", "g1", post, f"u{i}-{minute % 7}",
                        T0 + minute * MIN + i * 50,
                    )
                )  # fmt: skip
        yield events


def run(
    processor: PartitionProcessor, minutes: Iterator[list[CanonicalEvent]], offset: int = 0
) -> list[Alert]:
    alerts: list[Alert] = []
    for i, events in enumerate(minutes):
        if events:
            alerts += processor.process(TOPICS.likes, offset + i, encode_message(events), WALL_MS).alerts
        alerts += processor.tick(TOPICS.ticks, offset + i, WALL_MS).alerts
        processor.settle()
    return [a for a in alerts if a.kind is AlertKind.ENGAGEMENT_SPIKE]


def community(posts: int = 40, every_min: int = 12) -> dict[str, tuple[int, float]]:
    """Posts every `every_min` minutes with a heavy tail of popularity: most draw a few events, some 10x."""
    return {f"p{i}": (i * every_min, (1.0, 0.5, 2.0, 0.8, 10.0, 1.5, 0.6, 25.0)[i % 8]) for i in range(posts)}


def test_a_sudden_burst_hours_after_publishing_alerts_once_with_its_figures() -> None:
    posts = community()
    posts["late"] = (300, 1.0)  # published at 5 h, an ordinary post; 2 h later, 40 events a minute
    alerts = run(PartitionProcessor(0, RULES), traffic(8, posts, {"late": (420, 40)}))
    assert [a.post_id for a in alerts] == ["late"], [(a.post_id, a.observed, a.expected) for a in alerts]
    (spike,) = alerts
    assert spike.alert_id == f"vk:g1:late:engagement_spike:{spike.fired_at_ms - spike.fired_at_ms % MIN}"
    assert T0 + 420 * MIN <= spike.fired_at_ms <= T0 + 430 * MIN, "within the burst's 10 minutes"
    assert spike.observed is not None and spike.expected is not None
    assert spike.observed >= 50 and spike.observed >= 10 * spike.expected
    assert 2 * 3600 <= spike.waited_s <= 2 * 3600 + 600 and spike.sla_s == 600
    assert spike.commented_at_ms == T0 + 300 * MIN, "the post's first minute"


def test_a_post_popular_from_its_first_minute_is_not_a_spike() -> None:
    posts = community()
    posts["viral"] = (300, 60.0)  # 60x an ordinary post from the start, fading like every post
    assert run(PartitionProcessor(0, RULES), traffic(8, posts, {})) == []


def test_small_numbers_never_alert_whatever_the_ratio() -> None:
    posts = community()
    posts["quiet"] = (300, 0.05)  # draws nothing; then 4 a minute: far above its past, below the floor
    assert run(PartitionProcessor(0, RULES), traffic(8, posts, {"quiet": (420, 4)})) == []


def test_a_calmed_post_is_armed_again_and_a_second_burst_alerts_again() -> None:
    posts = community()
    posts["twice"] = (200, 1.0)
    minutes = list(traffic(10, posts, {"twice": (300, 40)}))
    for minute in range(400, 410):  # a second burst, an hour and a half after the first calmed down
        minutes[minute] += [
            CanonicalEvent(f"b2-{minute}-{i}", "like", "vk", "g1", "twice", f"v{i}", T0 + minute * MIN + i)
            for i in range(60)
        ]
    alerts = run(PartitionProcessor(0, RULES), iter(minutes))
    assert [a.post_id for a in alerts] == ["twice", "twice"], [(a.post_id, a.fired_at_ms) for a in alerts]
    assert alerts[0].alert_id != alerts[1].alert_id
    assert alerts[1].fired_at_ms >= T0 + 400 * MIN


def test_a_restart_in_the_middle_of_an_episode_does_not_alert_again() -> None:
    posts = community()
    posts["late"] = (300, 1.0)
    minutes = list(traffic(8, posts, {"late": (420, 40)}))
    first = PartitionProcessor(0, RULES)
    changelog: dict[bytes, bytes | None] = {}
    alerts: list[Alert] = []
    for i, events in enumerate(minutes[:424]):
        if events:
            alerts += first.process(TOPICS.likes, i, encode_message(events), WALL_MS).alerts
        alerts += first.tick(TOPICS.ticks, i, WALL_MS).alerts
        changelog.update(first.settle().state)
    spikes = [a for a in alerts if a.kind is AlertKind.ENGAGEMENT_SPIKE]
    assert [a.post_id for a in spikes] == ["late"]
    fired_by = next(i for i, m in enumerate(minutes) if m and m[0].ts_ms >= spikes[0].fired_at_ms - MIN)

    restarted = PartitionProcessor(0, RULES)
    restarted.restore(
        ((k, v) for k, v in changelog.items() if v is not None), TOPICS.processor_inputs, WALL_MS
    )
    replayed = restarted.process(TOPICS.likes, fired_by - 5, encode_message(minutes[fired_by - 5]), WALL_MS)
    assert [a.alert_id for a in replayed.alerts if a.kind is AlertKind.ENGAGEMENT_SPIKE] == [
        spikes[0].alert_id
    ], "read again from before the alert's message: sent again, with the same id"
    rest = run(restarted, iter(minutes[424:]), offset=424)
    assert rest == [], "the episode survived the restart"


def test_age_curve_integrates_its_buckets_and_refuses_what_it_has_not_learned() -> None:
    curve = AgeCurve()
    assert curve.expected(0, 600_000, min_posts=1) is None
    for _ in range(3):
        curve.fold(0, 60.0)  # 60 events in the first 10 minutes
        curve.fold(1, 40.0)  # 40 in the next 20
    assert abs(curve.expected(0, 600_000, min_posts=1) - 60.0) < 1e-9  # type: ignore[operator]
    assert abs(curve.expected(300_000, 1_200_000, min_posts=1) - (30.0 + 20.0)) < 1e-9  # type: ignore[operator]
    assert curve.expected(0, AGE_BUCKET_ENDS_MS[1] + 1, min_posts=1) is None, "past what it learned"
    assert curve.expected(0, 600_000, min_posts=5) is None, "three posts are not enough"


def test_before_any_curve_is_known_a_burst_is_judged_against_the_post_s_own_last_minutes() -> None:
    """Two posts only: no curve ever has 5 posts. The steady busy one never alerts; the burst does."""
    posts = {"busy": (0, 30.0), "calm": (0, 1.0)}
    alerts = run(PartitionProcessor(0, RULES), traffic(3, posts, {"calm": (90, 40)}))
    assert [a.post_id for a in alerts] == ["calm"]
    assert alerts[0].expected == 20.0, "its own previous 10 minutes: 2 events a minute at 73-83 min old"


def test_one_topic_read_to_its_end_before_another_still_gives_one_alert_per_burst() -> None:
    """A backlog drains its topics side by side, one may run hours ahead: here the reposts are all read
    before any like. The burst is judged at its own time as each topic's part of it comes, and alerted
    once (judged again as the likes arrive, it is the same burst, not a second one)."""
    posts = community()
    posts["late"] = (300, 1.0)
    minutes = list(traffic(8, posts, {"late": (420, 40)}))
    reposts = [[e for e in m if e.type == "repost"] for m in minutes]
    likes = [[e for e in m if e.type != "repost"] for m in minutes]
    processor = PartitionProcessor(0, RULES)
    alerts: list[Alert] = []
    for topic, messages in ((TOPICS.reposts, reposts), (TOPICS.likes, likes)):
        for i, events in enumerate(messages):
            if events:
                alerts += processor.process(topic, i, encode_message(events), WALL_MS).alerts
            alerts += processor.tick(TOPICS.ticks, i, WALL_MS).alerts
            processor.settle()
    spikes = [a for a in alerts if a.kind is AlertKind.ENGAGEMENT_SPIKE]
    assert [a.post_id for a in spikes] == ["late"], [(a.post_id, a.observed, a.expected) for a in spikes]
    assert T0 + 420 * MIN <= spikes[0].fired_at_ms <= T0 + 430 * MIN
