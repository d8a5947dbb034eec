"""Engagement spikes: a post that suddenly draws far more than its age and its own past predict.

Plain logic, no faust and no I/O; it reads the minute windows of the partition's `EngagementBook`.

**Definition.** Engagement = likes + comments + reposts (as in the engagement rates). At event time `now`,
a post's *observed* engagement is that of its minutes in the last `window` (10 min). What is *expected* of
it comes from an **age curve**: the engagement an average post draws at each age (buckets ending at 10 min,
30 min, 1 h, 2 h, 4 h, 8 h, 12 h), learned from the community's own recent posts: whenever a post's age
passes a bucket's end, what it drew in that bucket is folded into its community's curve (sums and weights
that decay by `CURVE_KEEP` per fold, so about the last 50 posts of each age count). A post's expectation is
the curve over the window's ages, scaled by how the post did before the window against the curve
(`popularity`): a post popular from its first minute is expected to stay popular, so it is not a spike;
a post that drew what posts of its kind draw, then suddenly 20x, is. Popularity is the post's own, not
floored at the average post's: engagement is heavy-tailed, so the average post is a popular one, and
the floor below is what keeps a post that drew nothing from alerting on a handful of likes.

Whatever the curve says, what is expected is never less than the post's own engagement in the 10 minutes
before the window: a post that was already this busy is not suddenly busy.

A spike is observed >= `factor` x expected and observed >= `min_events` (the floor: small numbers never
alert), for posts between `min_age` (30 min: before that there is no past to scale by) and 12 h old
(the curve's end). Until a community's curve has `min_posts` posts in every bucket it needs, the partition's
curve (all its communities) stands in: only the curve's shape matters, since the post's own past scales it.
While no curve knows the ages yet (a stream's first hours: a bucket is known once posts have lived through
it), the post's own previous 10 minutes are all that is expected.

One alert per post per episode: the episode ends (the post is armed again) once observed falls below half
of what raised it (half the floor, or half of `factor` x expected). The alert's id names the post and the
minute the episode began; the episode is persisted, so a restart in the middle of one does not alert
again. A replay finds the same bursts, but the minute that fires one (and so its id) can differ between
runs: posts are folded into the curves on the wall-clock beats (`PartitionProcessor.tick`), so how many
folds a judgement sees depends on how fast the workers read.

A post's age counts from the first minute it has a window (its first counted event: publications are
not always in the stream). Posts are spread over partitions by post, so each partition learns its
communities' curves from the posts it holds: for a community with many posts, a sample of them.
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from pipeline.stream.state_format import (
    AGE_CURVE,
    SPIKE,
    AgeCurveState,
    SpikeState,
    encode_curve,
    encode_spike,
)
from schemas.outputs import Alert, AlertKind, decode_outputs, encode_outputs

MINUTE_MS = 60_000
AGE_BUCKET_ENDS_MS = (600_000, 1_800_000, 3_600_000, 7_200_000, 14_400_000, 28_800_000, 43_200_000)
CURVE_KEEP = 0.98  # per fold: a post folded 50 posts ago weighs 0.36
FOLD_EVERY_MS = 600_000  # event time between folds of posts' ages into the curves

Post = tuple[str, str, str]  # (platform, community_id, post_id)
Community = tuple[str, str]
PARTITION_CURVE: Community = ("", "")


@dataclass(frozen=True, slots=True)
class SpikeRules:
    window_ms: int = 600_000
    factor: float = 10.0
    min_events: int = 50
    min_age_ms: int = 1_800_000
    min_posts: float = 5.0  # the curve's weight each bucket needs before it is trusted

    def __post_init__(self) -> None:
        if self.window_ms < MINUTE_MS or self.window_ms % MINUTE_MS:
            raise ValueError("the spike window must be whole minutes")
        if self.factor <= 1 or self.min_events < 1:
            raise ValueError("a spike must be above what is expected, and at least one event")


@dataclass(slots=True)
class AgeCurve:
    sums: list[float] = field(default_factory=lambda: [0.0] * len(AGE_BUCKET_ENDS_MS))
    weights: list[float] = field(default_factory=lambda: [0.0] * len(AGE_BUCKET_ENDS_MS))

    def fold(self, bucket: int, engagement: float) -> None:
        self.sums[bucket] = self.sums[bucket] * CURVE_KEEP + engagement
        self.weights[bucket] = self.weights[bucket] * CURVE_KEEP + 1.0

    def expected(self, start_ms: int, end_ms: int, min_posts: float) -> float | None:
        """What an average post draws between these ages; None if a bucket in that span is not known."""
        total, at = 0.0, max(0, start_ms)
        while at < end_ms:
            bucket = bisect.bisect_right(AGE_BUCKET_ENDS_MS, at)
            if bucket == len(AGE_BUCKET_ENDS_MS) or self.weights[bucket] < min_posts:
                return None
            bucket_start = AGE_BUCKET_ENDS_MS[bucket - 1] if bucket else 0
            bucket_end = AGE_BUCKET_ENDS_MS[bucket]
            until = min(end_ms, bucket_end)
            rate = self.sums[bucket] / self.weights[bucket] / (bucket_end - bucket_start)
            total += rate * (until - at)
            at = until
        return total

    def state(self) -> AgeCurveState:
        return AgeCurveState(list(self.sums), list(self.weights))

    @classmethod
    def of(cls, state: AgeCurveState) -> AgeCurve:
        return cls(list(state.sums), list(state.weights))


@dataclass(slots=True)
class Episode:
    alert: Alert
    source: tuple[str, int]
    raised_by: float  # the threshold it crossed: half of it ends the episode
    calm: bool = False  # ended; kept so that a window overlapping it (a lagging topic's) starts no other


class SpikeWatch:
    """One partition's age curves and spike episodes, over the windows of its engagement book."""

    def __init__(self, rules: SpikeRules, windows: Mapping[Post, Mapping[int, object]]) -> None:
        self.rules = rules
        self._windows = windows  # EngagementBook's post -> minute -> MinuteWindow (read only)
        self.curves: dict[Community, AgeCurve] = {}
        self.episodes: dict[Post, Episode] = {}
        self.folded_to_ms = 0
        self._first_minute: dict[Post, int] = {}
        # Per post, at least its engagement over the last window: what it was when last summed, plus the
        # events counted since (the window only loses minutes as it slides). Most posts never reach the
        # floor, so most never need the sum: this keeps the watch's cost per event small.
        self._bound: dict[Post, tuple[int, int]] = {}  # (window end it was summed for, bound)
        self._due: list[tuple[int, Post, int]] = []  # (age bucket's end in event time, post, bucket)
        self._changed_curves: set[Community] = set()
        self._changed_episodes: set[Post] = set()

    # -- judging -------------------------------------------------------------------------------------

    def judge(self, counted: Mapping[Post, tuple[int, int]], source: tuple[str, int]) -> list[Alert]:
        """The posts that just counted events, each with how many and the newest one's event time (the
        window is judged as of then: the input topics are read side by side and one may run hours ahead of
        another while a backlog drains, so a burst is judged at its own time, by whichever of its events
        comes last). The alerts of the spikes they start."""
        alerts = []
        bound, first_minute, floor = self._bound, self._first_minute, self.rules.min_events
        for post, (count, at_ms) in counted.items():
            if post not in first_minute:
                self._track(post)
            summed_at, reach = bound.get(post, (_NEVER, 0))
            reach += count
            bound[post] = (summed_at, reach)
            # The bound holds for a window at or after the one it was summed for: one further back may hold
            # minutes it left out (events a lagging topic counted), so that is summed again.
            if reach < floor and at_ms >= summed_at and post not in self.episodes:  # none on, none calm
                continue
            alert = self._judge(post, at_ms, source)
            if alert is not None:
                alerts.append(alert)
        return alerts

    def _track(self, post: Post) -> None:
        minutes = self._windows.get(post)
        if not minutes:
            return
        first = self._first_minute[post] = min(minutes)
        for bucket, end in enumerate(AGE_BUCKET_ENDS_MS):
            if first + end > self.folded_to_ms:
                heapq.heappush(self._due, (first + end, post, bucket))
                return

    def _judge(self, post: Post, now_ms: int, source: tuple[str, int]) -> Alert | None:
        minutes = self._windows.get(post)
        if not minutes or post not in self._first_minute:
            return None
        rules = self.rules
        # Its first minute: a topic read behind the others may bring events older than the first seen.
        first = self._first_minute[post] = min(self._first_minute[post], min(minutes))
        observed = _engagement(minutes, now_ms - rules.window_ms, now_ms)
        self._bound[post] = (now_ms, observed)
        episode = self.episodes.get(post)
        if episode is not None and not episode.calm:
            if now_ms >= episode.alert.fired_at_ms and observed < episode.raised_by / 2:
                episode.calm = True
                self._changed_episodes.add(post)
            return None
        if episode is not None and now_ms - rules.window_ms <= episode.alert.fired_at_ms:
            return None  # the same burst, judged again as a lagging topic's events for it come
        age = now_ms - first
        if observed < rules.min_events or not rules.min_age_ms <= age <= AGE_BUCKET_ENDS_MS[-1]:
            return None
        window_start = now_ms - rules.window_ms
        before_window = window_start - window_start % MINUTE_MS - MINUTE_MS  # the last minute before it
        previous = _engagement(minutes, before_window - rules.window_ms + MINUTE_MS, before_window)
        if observed < rules.factor * previous:  # it was already this busy: not sudden (and cheap to tell)
            return None
        by_age = self._by_age(post, minutes, first, age, before_window)
        expected = float(previous) if by_age is None else max(by_age, float(previous))
        if observed < rules.factor * expected:
            return None
        platform, community, post_id = post
        episode_minute = now_ms - now_ms % MINUTE_MS
        alert = Alert(
            alert_id=f"{platform}:{community}:{post_id}:{AlertKind.ENGAGEMENT_SPIKE.value}:{episode_minute}",
            kind=AlertKind.ENGAGEMENT_SPIKE, platform=platform, community_id=community, post_id=post_id,
            comment_id="", author_id="", snippet="", commented_at_ms=first, fired_at_ms=now_ms,
            waited_s=age / 1000, sla_s=rules.window_ms / 1000, observed=float(observed),
            expected=round(expected, 2),
        )  # fmt: skip
        self.episodes[post] = Episode(alert, source, _raised_by(rules, expected))
        self._changed_episodes.add(post)
        return alert

    def _by_age(
        self, post: Post, minutes: Mapping[int, object], first: int, age: int, before_window: int
    ) -> float | None:
        """The curve over the window's ages (the post is `age` old; `before_window` is the minute before
        the window), scaled by the post's popularity before the window; None while no curve knows those
        ages. (What is expected is the larger of this and the post's own engagement in the window before:
        a post that was already this busy is not suddenly busy.)"""
        rules = self.rules
        for community in ((post[0], post[1]), PARTITION_CURVE):
            curve = self.curves.get(community)
            if curve is None:
                continue
            in_window = curve.expected(age - rules.window_ms, age, rules.min_posts)
            before = curve.expected(0, age - rules.window_ms, rules.min_posts)
            if in_window is None or before is None:
                continue
            drawn_before = _engagement(minutes, first, before_window)
            return in_window * (drawn_before / before if before > 0 else 1.0)
        return None

    def calm_quiet_posts(self, now_ms: int) -> None:
        """Ends the episodes of posts whose engagement fell away without a new event to judge them by."""
        for post, episode in self.episodes.items():
            if episode.calm or now_ms < episode.alert.fired_at_ms:  # ended, or still ahead of this time
                continue
            minutes = self._windows.get(post, {})
            if _engagement(minutes, now_ms - self.rules.window_ms, now_ms) < episode.raised_by / 2:
                episode.calm = True
                self._changed_episodes.add(post)

    # -- learning ------------------------------------------------------------------------------------

    def fold(self, now_ms: int) -> None:
        """Every `FOLD_EVERY_MS` of event time: each post whose age passed a bucket's end since the last
        fold adds what it drew in that bucket to its community's curve and the partition's. Folds happen
        at fixed points of event time, so a restart (which restores `folded_to_ms`) folds the same."""
        point = now_ms - now_ms % FOLD_EVERY_MS
        if point <= self.folded_to_ms:
            return
        self.folded_to_ms = point
        due = self._due
        while due and due[0][0] <= point:
            _, post, bucket = heapq.heappop(due)
            minutes = self._windows.get(post)
            first = self._first_minute.get(post)
            if not minutes or first is None:
                continue
            start = AGE_BUCKET_ENDS_MS[bucket - 1] if bucket else 0
            drawn = _engagement(minutes, first + start, first + AGE_BUCKET_ENDS_MS[bucket] - MINUTE_MS)
            for community in ((post[0], post[1]), PARTITION_CURVE):
                self.curves.setdefault(community, AgeCurve()).fold(bucket, drawn)
                self._changed_curves.add(community)
            if bucket + 1 < len(AGE_BUCKET_ENDS_MS):
                heapq.heappush(due, (first + AGE_BUCKET_ENDS_MS[bucket + 1], post, bucket + 1))
        self.calm_quiet_posts(now_ms)
        self._forget_gone_posts()

    def track_restored(self) -> None:
        """After a restore: every post with windows is followed again, from its next bucket's end."""
        for post in self._windows:
            if post not in self._first_minute:
                self._track(post)

    def _forget_gone_posts(self) -> None:
        for post in [p for p in self._first_minute if not self._windows.get(p)]:
            del self._first_minute[post]
            self._bound.pop(post, None)
            if self.episodes.pop(post, None) is not None:
                self._changed_episodes.add(post)

    # -- persistence ---------------------------------------------------------------------------------

    def drain_changes(self) -> Iterator[tuple[str, tuple[str, ...], bytes | None]]:
        """(namespace, key parts, value or None) for every curve and episode changed since the last call."""
        for community in sorted(self._changed_curves):
            yield AGE_CURVE, community, encode_curve(self.curves[community].state())
        for post in sorted(self._changed_episodes):
            episode = self.episodes.get(post)
            if episode is None:
                yield SPIKE, post, None
            else:
                state = SpikeState(encode_outputs([episode.alert]), *episode.source, calm=episode.calm)
                yield SPIKE, post, encode_spike(state)
        self._changed_curves.clear()
        self._changed_episodes.clear()

    def restore_curve(self, community: Community, state: AgeCurveState) -> None:
        self.curves[community] = AgeCurve.of(state)

    def restore_episode(self, post: Post, state: SpikeState) -> None:
        (alert,) = (r for r in decode_outputs(state.alert) if isinstance(r, Alert))
        raised_by = _raised_by(self.rules, alert.expected or 0.0)
        self.episodes[post] = Episode(alert, (state.topic, state.offset), raised_by, state.calm)

    def reemit(self, topic: str, offset: int) -> list[Alert]:
        """The spike alerts raised by messages of `topic` from `offset` on: read again after a restart,
        their alerts may have been lost with the crash (ids are stable: a repeat collapses)."""
        return [e.alert for e in self.episodes.values() if e.source[0] == topic and e.source[1] >= offset]


_NEVER = -(1 << 62)  # a post never summed: its bound is every event it counted


def _raised_by(rules: SpikeRules, expected: float) -> float:
    """The threshold a spike crossed: the episode ends below half of it."""
    return max(float(rules.min_events), rules.factor * expected)


def _engagement(minutes: Mapping[int, object], after_ms: int, until_ms: int) -> int:
    """Likes + comments + reposts of the minutes that end after `after_ms` and start at or before
    `until_ms`: the minutes a span of event time overlaps."""
    low = after_ms - after_ms % MINUTE_MS
    total = 0
    if len(minutes) <= (until_ms - low) // MINUTE_MS:  # fewer windows than minutes in the span
        for minute, window in minutes.items():
            if low <= minute <= until_ms:
                total += window.likes + window.comments + window.reposts  # type: ignore[attr-defined]
        return total
    for minute in range(low, until_ms + 1, MINUTE_MS):
        window = minutes.get(minute)
        if window is not None:
            total += window.likes + window.comments + window.reposts  # type: ignore[attr-defined]
    return total
