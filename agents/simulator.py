"""Synthetic traffic from simulated publics: a load generator and the demo's source.

What makes it realistic enough to exercise the pipeline:
- post popularity is heavy-tailed (Pareto weights) and decays with the post's age, so a few posts go viral;
- activity follows a daily cycle (quietest at 08:00, a peak at 20:00, community time = UTC here), scaled
  so that the mean rate over the simulated span asked for is `events_per_sim_s`, whatever the hour: a
  short run in the morning lull delivers the rate it was given, not a fifth of it;
- likes outnumber comments outnumber reposts;
- comments form threads (some reply to earlier comments of the same post);
- the community answers a configurable share of subscriber comments after a log-normal delay (most within
  minutes, some after hours); the rest are never answered and should raise alerts;
- a few comments are deleted; each community has its own audience mix (age band, gender, country);
- people follow and unfollow the communities (more follow than leave), as VK and Telegram push it.

Everything is drawn from one `random.Random(seed)` and timestamps come from a fixed simulated clock, so
the same settings and seed give the same events, byte for byte.

The platforms' counts that are not events (followers, a post's views) come from `audience()`: snapshots
as the platforms' exports would give them, consistent with the events produced so far. A community
starts with a follower count of its own, which its follows and unfollows move; a post's views are its
subscriber interactions times the community's views per interaction. They are drawn from a second
generator, so asking for them changes no event.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pydantic import BaseModel, Field

from schemas import AGE_BANDS, COMMUNITY_POST_ID, GENDERS, CanonicalEvent, EventType
from schemas.audience import AudienceSnapshot

_COUNTRIES = ("RU", "KZ", "BY", "UA", "DE", "US", "GB", "FR", "UZ", "AM", "GE", "RS")
_TEXTS = (
    "When is the next meetup?", "Love this!", "Where can I buy it?", "The link does not open",
    "Great post, thanks", "Is delivery available in my city?", "Why was my order cancelled?",
    "Can you share the schedule?", "First!", "This is so true", "How much does it cost?",
    "Still waiting for an answer...", "Will there be a stream?", "Wow", "Congratulations!",
)  # fmt: skip
_ANSWERS = (
    "Thanks! We will reply in DM",
    "Hi! Details are in the pinned post",
    "Sorry for the wait, fixed now",
)
DEFAULT_START = datetime(2026, 1, 1, tzinfo=UTC)


class SimulatorSettings(BaseModel):
    communities: int = Field(default=5, ge=1, le=100_000)
    events_per_sim_s: float = Field(
        default=50.0,
        gt=0,
        le=10_000_000,
        description="mean rate of all events (the community's answers and deletions included) in simulated "
        "time, over the span the simulator is told it will run",
    )
    posts_per_community_per_hour: float = Field(default=2.0, gt=0, le=3600)
    like_share: float = Field(default=0.80, ge=0, le=1)
    comment_share: float = Field(default=0.15, ge=0, le=1)
    thread_reply_share: float = Field(
        default=0.3, ge=0, le=1, description="comments that answer another subscriber"
    )
    answer_share: float = Field(
        default=0.7, ge=0, le=1, description="subscriber comments the community answers"
    )
    answer_median_s: float = Field(default=300.0, gt=0, le=86_400)
    answer_sigma: float = Field(default=1.2, gt=0, le=5, description="spread of the log-normal answer delay")
    delete_share: float = Field(default=0.01, ge=0, le=1)
    burst_share: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="posts that suddenly take off 1-3 h after publishing: 200-500 likes and reposts within "
        "10 minutes (what `engagement_spike` alerts on)",
    )
    follow_share: float = Field(
        default=0.02, ge=0, le=1, description="organic events that are a follow or an unfollow of a community"
    )
    unfollow_share: float = Field(default=0.3, ge=0, le=1, description="of those, the unfollows")
    users_per_community: int = Field(default=5_000, ge=10, le=10_000_000)
    seed: int = 1


@dataclass(order=True, slots=True)
class _Scheduled:
    ts_ms: int
    seq: int
    event: CanonicalEvent = field(compare=False)


@dataclass(slots=True)
class _Post:
    post_id: str
    created_ms: int
    weight: float
    comments: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Community:
    community_id: str
    admin_id: str
    ages: list[float]
    genders: list[float]
    countries: tuple[str, ...]
    country_weights: list[float]
    posts: list[_Post] = field(default_factory=list)
    post_seq: int = 0
    post_weights: list[float] = field(default_factory=list)
    weights_at_ms: int = -1
    followers: int = 0  # as the platform counts them: a starting audience, moved by follows and unfollows
    views_per_interaction: float = 20.0
    # post id -> its subscriber likes, comments and reposts: what its views are made of
    interactions: dict[str, int] = field(default_factory=dict)


class Simulator:
    """Yields canonical events in event-time order, starting at `start` in simulated time.

    `span_s` is the simulated time the caller means to generate (a day when unknown): the daily cycle is
    divided by its mean over that span, and the organic rate by the follow-ups (answers, deletions) each
    organic event brings on average, so the events of the span arrive at `events_per_sim_s` on average."""

    def __init__(
        self, settings: SimulatorSettings, start: datetime = DEFAULT_START, span_s: float = 86_400.0
    ) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        if span_s <= 0:
            raise ValueError("span_s must be positive")
        self.settings = settings
        self.start_ms = int(start.timestamp() * 1000)
        comment_share = max(0.0, min(settings.comment_share, 1.0 - settings.like_share))
        # Answers and deletions follow subscriber comments, which are the organic events that are not follows.
        follow_ups = (
            (1.0 - settings.follow_share) * comment_share * (settings.answer_share + settings.delete_share)
        )
        cycle_mean = mean_daily_cycle(self.start_ms, self.start_ms + span_s * 1000)
        self.organic_per_sim_s = settings.events_per_sim_s / (1.0 + follow_ups) / cycle_mean
        self._rng = random.Random(settings.seed)
        self._audience_rng = random.Random(f"audience-{settings.seed}")
        self._seq = 0
        self._newest_ms = self.start_ms
        self._scheduled: list[_Scheduled] = []
        self._communities = [self._new_community(i) for i in range(settings.communities)]
        for community in self._communities:
            for _ in range(3):
                self._new_post(community, self.start_ms - self._rng.randint(0, 3_600_000))

    def events(self, count: int | None = None, until_ms: int | None = None) -> Iterator[CanonicalEvent]:
        """Events until `count` were produced or simulated time reaches `until_ms` (one must be given)."""
        if count is None and until_ms is None:
            raise ValueError("give a count or an end time")
        rng = self._rng
        now_ms = float(self.start_ms)
        produced = 0
        next_post_ms = now_ms + self._post_gap_ms()
        while count is None or produced < count:
            rate = self.organic_per_sim_s * _daily_cycle(now_ms)
            now_ms += rng.expovariate(rate) * 1000
            while next_post_ms <= now_ms:
                self._new_post(rng.choice(self._communities), int(next_post_ms))
                next_post_ms += self._post_gap_ms()
            while self._scheduled and self._scheduled[0].ts_ms <= now_ms:
                if count is not None and produced >= count:
                    return
                event = heapq.heappop(self._scheduled).event
                self._newest_ms = event.ts_ms
                yield event
                produced += 1
            if until_ms is not None and now_ms >= until_ms:
                return
            if count is not None and produced >= count:
                return
            self._newest_ms = int(now_ms)
            yield self._organic_event(int(now_ms))
            produced += 1

    def audience(self) -> list[AudienceSnapshot]:
        """What the platforms would report now: each community's followers, and each post's views (those
        that drew an interaction), as of the start of the minute of the newest event produced. The start
        of the minute, so that a query for the period ending just after the newest data (`--until latest`)
        finds them."""
        as_of = self._newest_ms - self._newest_ms % 60_000
        snapshots = []
        for c in self._communities:
            snapshots.append(
                AudienceSnapshot(kind="followers", platform="sim", community_id=c.community_id, as_of=as_of,
                                 followers=c.followers)
            )  # fmt: skip
            snapshots += [
                AudienceSnapshot(kind="views", platform="sim", community_id=c.community_id, post_id=post_id,
                                 as_of=as_of, views=round(n * c.views_per_interaction))
                for post_id, n in c.interactions.items()
            ]  # fmt: skip
        return snapshots

    def _organic_event(self, ts_ms: int) -> CanonicalEvent:
        rng, s = self._rng, self.settings
        community = rng.choice(self._communities)
        if s.follow_share and rng.random() < s.follow_share:
            return self._follow(community, ts_ms)
        post = self._pick_post(community, ts_ms)
        user = f"u{int(rng.paretovariate(1.1)) % s.users_per_community}"
        roll = rng.random()
        segment = self._segment(community)
        interactions = community.interactions
        interactions[post.post_id] = interactions.get(post.post_id, 0) + 1
        if roll < s.like_share:
            return self._event(EventType.LIKE, community, post, user, ts_ms, **segment)
        if roll < s.like_share + s.comment_share:
            parent = (
                rng.choice(post.comments) if post.comments and rng.random() < s.thread_reply_share else None
            )
            comment_id = f"{post.post_id}-m{self._next()}"
            event = self._event(
                EventType.COMMENT, community, post, user, ts_ms, comment_id=comment_id, parent_id=parent,
                text=rng.choice(_TEXTS), **segment,
            )  # fmt: skip
            post.comments.append(comment_id)
            self._schedule_follow_ups(community, post, event)
            return event
        return self._event(EventType.REPOST, community, post, user, ts_ms, **segment)

    def _follow(self, community: _Community, ts_ms: int) -> CanonicalEvent:
        """Someone starts or stops following the community. No audience segment: VK and Telegram send none
        with these."""
        rng = self._rng
        leaves = rng.random() < self.settings.unfollow_share and community.followers > 0
        community.followers += -1 if leaves else 1
        return CanonicalEvent(
            event_id=f"sim-{self.settings.seed}-{self._next()}",
            type=EventType.UNFOLLOW if leaves else EventType.FOLLOW,
            platform="sim",
            community_id=community.community_id,
            post_id=COMMUNITY_POST_ID,
            user_id=f"u{rng.randrange(self.settings.users_per_community)}",
            ts=ts_ms,
        )

    def _schedule_follow_ups(self, community: _Community, post: _Post, comment: CanonicalEvent) -> None:
        rng, s = self._rng, self.settings
        if rng.random() < s.answer_share:
            delay_s = rng.lognormvariate(math.log(s.answer_median_s), s.answer_sigma)
            answer_ts = comment.ts_ms + max(1_000, int(delay_s * 1000))
            answer = self._event(
                EventType.COMMENT, community, post, community.admin_id, answer_ts,
                comment_id=f"{post.post_id}-m{self._next()}", parent_id=comment.comment_id,
                by_community=True, text=rng.choice(_ANSWERS),
            )  # fmt: skip
            heapq.heappush(self._scheduled, _Scheduled(answer_ts, self._seq, answer))
        if rng.random() < s.delete_share:
            delete_ts = comment.ts_ms + rng.randint(5_000, 600_000)
            delete = self._event(
                EventType.COMMENT_DELETE,
                community,
                post,
                comment.user_id,
                delete_ts,
                comment_id=comment.comment_id,
            )
            heapq.heappush(self._scheduled, _Scheduled(delete_ts, self._next(), delete))

    def _event(
        self, type_: EventType, community: _Community, post: _Post, user: str, ts_ms: int, **extra: object
    ) -> CanonicalEvent:
        return CanonicalEvent(
            event_id=f"sim-{self.settings.seed}-{self._next()}",
            type=type_,
            platform="sim",
            community_id=community.community_id,
            post_id=post.post_id,
            user_id=user,
            ts=ts_ms,
            **extra,  # type: ignore[arg-type]
        )

    def _pick_post(self, community: _Community, ts_ms: int) -> _Post:
        # Attention decays with the post's age (half-life ~6 h); popularity is the post's Pareto weight.
        # The cumulative weights are refreshed once a simulated minute, which is plenty for a 6 h decay.
        if community.weights_at_ms < 0 or ts_ms - community.weights_at_ms >= 60_000:
            decayed = [p.weight * 0.5 ** ((ts_ms - p.created_ms) / 21_600_000) for p in community.posts]
            community.post_weights = list(itertools.accumulate(decayed))
            community.weights_at_ms = ts_ms
        return self._rng.choices(community.posts, cum_weights=community.post_weights)[0]

    def _segment(self, community: _Community) -> dict[str, str]:
        choices = self._rng.choices
        return {
            "age_band": choices(AGE_BANDS, cum_weights=community.ages)[0],
            "gender": choices(GENDERS, cum_weights=community.genders)[0],
            "country": choices(community.countries, cum_weights=community.country_weights)[0],
        }

    def _new_community(self, index: int) -> _Community:
        rng, audience = self._rng, self._audience_rng
        countries = tuple(rng.sample(_COUNTRIES, 4))
        return _Community(
            community_id=f"c{index + 1}",
            admin_id=f"admin-c{index + 1}",
            ages=list(itertools.accumulate(rng.uniform(0.2, 3.0) for _ in AGE_BANDS)),
            genders=list(itertools.accumulate([rng.uniform(1, 3), rng.uniform(1, 3), 0.1])),
            countries=countries,
            country_weights=list(itertools.accumulate([8.0, 3.0, 1.0, 0.5])),
            # Most followers never engage: a few to a hundred times the people who do.
            followers=int(self.settings.users_per_community * audience.uniform(5, 100)),
            views_per_interaction=audience.uniform(15, 60),
        )

    def _new_post(self, community: _Community, created_ms: int) -> None:
        community.post_seq += 1
        post = _Post(
            f"{community.community_id}-p{community.post_seq}", created_ms, self._rng.paretovariate(1.2)
        )
        community.posts.append(post)
        if self.settings.burst_share and self._rng.random() < self.settings.burst_share:
            self._schedule_burst(community, post)
        if len(community.posts) > 50:  # old posts fall out of the feed
            community.posts.pop(0)
        community.weights_at_ms = -1

    def _schedule_burst(self, community: _Community, post: _Post) -> None:
        rng = self._rng
        start = post.created_ms + rng.randint(3_600_000, 3 * 3_600_000)
        for i in range(rng.randint(200, 500)):
            ts_ms = start + rng.randint(0, 600_000)
            kind = EventType.REPOST if i % 4 == 3 else EventType.LIKE
            user = f"u{rng.randrange(self.settings.users_per_community)}"
            event = self._event(kind, community, post, user, ts_ms, **self._segment(community))
            heapq.heappush(self._scheduled, _Scheduled(ts_ms, self._seq, event))

    def _post_gap_ms(self) -> float:
        per_ms = self.settings.posts_per_community_per_hour * self.settings.communities / 3_600_000
        return self._rng.expovariate(per_ms)

    def _next(self) -> int:
        self._seq += 1
        return self._seq


_CYCLE_DEPTH = 0.8
_CYCLE_MIDPOINT_H = 14.0  # the cycle rises through its mean at 14:00 and falls through it at 02:00


def _phase(ts_ms: float) -> float:
    return ((ts_ms / 3_600_000) % 24 - _CYCLE_MIDPOINT_H) / 24 * 2 * math.pi


def _daily_cycle(ts_ms: float) -> float:
    """Relative activity by hour of day: 0.2 at 08:00, 1.8 at 20:00, a mean of 1 over a whole day."""
    return 1.0 + _CYCLE_DEPTH * math.sin(_phase(ts_ms))


def mean_daily_cycle(start_ms: float, end_ms: float) -> float:
    """The mean of `_daily_cycle` over [start_ms, end_ms] (its integral in closed form)."""
    if end_ms - start_ms < 1:
        return _daily_cycle(start_ms)
    radians = (end_ms - start_ms) / 86_400_000 * 2 * math.pi
    rise = math.cos(_phase(start_ms)) - math.cos(_phase(start_ms) + radians)
    return 1.0 + _CYCLE_DEPTH * rise / radians
