"""Unanswered comments: one SLA clock per subscriber comment, in event time.

Plain logic, no faust and no I/O: the processor feeds it events and clock readings and forwards what it
returns. `CommentSlaBook` holds the clocks of one partition's posts (a post's events share a partition, so
a comment and its replies always meet in the same book).

Rules (issue: stream processors):
- a subscriber comment (`by_community` false) opens a clock with the community's SLA;
- a community reply (`by_community` true) whose `parent_id` is that comment closes it and records the
  response time; replies by other subscribers do not count;
- if the clock reaches the deadline first, exactly one `unanswered_comment` alert is emitted (optionally an
  `at_risk` warning before it); a reply after the alert emits `resolved` with the response time;
- a reply seen before its comment (out of order) means the comment is answered on arrival: no alert;
- `comment_delete` cancels the clock.

Time is whatever the caller says `now` is: the stream's event time (so a replay of a week gives the same
alerts as living through it), extrapolated by the wall clock on a live stream (see `EventClock`). Alerts
carry `fired_at` = the deadline in event time, so the same input always yields the same alerts.

Surviving a crash: the transitions are idempotent (a re-read comment finds its clock running, a re-read
reply finds it answered), so re-reading uncommitted messages changes nothing; what a crash can lose is
output. Every clock remembers the source message (topic, offset) of its last change and of each alert it
fired, and `reemit(topic, offset)` hands back what was produced from that offset on, for the processor to
send again when it re-reads from there. `drain_changes()`/`restore()` persist the clocks.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import msgspec

from pipeline.stream.state_format import (
    CLOCK,
    EARLY_REPLY,
    ClockComment,
    ClockState,
    decode_clock,
    decode_reply_ts,
    encode_clock,
    encode_reply_ts,
)
from schemas import COMMENT_TYPES, CanonicalEvent, EventType
from schemas.outputs import Alert, AlertKind, SlaRecord

ClockKey = tuple[str, str, str]  # (platform, community_id, comment_id)
Source = tuple[str, int]  # (topic, offset) of the message being processed

__all__ = ["Alert", "AlertKind", "CommentSlaBook", "EventClock", "SlaOutcome", "SlaPolicy", "SlaRecord"]


@dataclass(frozen=True, slots=True)
class SlaPolicy:
    """The response-time target: a default and optional per-community overrides, in seconds."""

    default_s: float
    per_community_s: Mapping[str, float] = field(default_factory=dict)
    at_risk_fraction: float | None = None  # e.g. 0.8: warn at 80% of the SLA
    remember_replies_ms: int = 7 * 86_400_000  # how long a reply that came before its comment is kept
    keep_clocks_ms: int = 7 * 86_400_000  # how long after its deadline a clock is kept (late replies)

    def sla_ms(self, community_id: str) -> int:
        return int(self.per_community_s.get(community_id, self.default_s) * 1000)


class _Clock(msgspec.Struct, gc=False):
    """Not tracked by the cycle collector (`gc=False`: strings, numbers and tuples of them, never a cycle):
    a worker holds one per comment for days, and every full collection walked them all."""

    comment: ClockComment
    deadline_ms: int
    at_risk_ms: int | None
    answered_at_ms: int | None = None
    warned: bool = False
    breached: bool = False
    cancelled: bool = False
    changed_by: Source = ("", -1)
    # alert kind -> (topic, offset, at_ms) of the message that fired it
    fired_by: dict[str, tuple[str, int, int]] = msgspec.field(default_factory=dict)

    @property
    def open(self) -> bool:
        return self.answered_at_ms is None and not self.cancelled


@dataclass(slots=True)
class SlaOutcome:
    alerts: list[Alert] = field(default_factory=list)
    records: list[SlaRecord] = field(default_factory=list)

    def extend(self, other: SlaOutcome) -> None:
        self.alerts += other.alerts
        self.records += other.records


_NO_SOURCE: Source = ("", -1)


class CommentSlaBook:
    """The SLA clocks of one partition. Feed `on_event` in stream order and `advance` with the clock."""

    def __init__(self, policy: SlaPolicy) -> None:
        self.policy = policy
        self._clocks: dict[ClockKey, _Clock] = {}
        self._early_replies: dict[ClockKey, int] = {}  # (platform, community, parent) -> reply ts
        self._due: list[tuple[int, ClockKey]] = []  # (when, clock key), a lazy min-heap
        # For eviction, lazy min-heaps too: (deadline, key) of every clock, (time, key) of every early reply.
        self._deadlines: list[tuple[int, ClockKey]] = []
        self._replied: list[tuple[int, ClockKey]] = []
        self._changed: set[tuple[str, ClockKey]] = set()  # ("c" clock | "r" early reply, key)
        self._running = 0  # clocks that still run: kept as they change, read on every tick

    @property
    def waiting(self) -> int:
        """Comments whose clock still runs (not answered, not deleted), breached or not."""
        return self._running

    def on_event(self, event: CanonicalEvent, source: Source = _NO_SOURCE) -> SlaOutcome:
        outcome = SlaOutcome()
        self._apply(event, outcome, source)
        return outcome

    def advance(self, now_ms: int, source: Source = _NO_SOURCE) -> SlaOutcome:
        """Fires every warning and alert due at or before `now_ms`."""
        outcome = SlaOutcome()
        self._advance(now_ms, outcome, source)
        return outcome

    def on_message(
        self, events: Iterable[CanonicalEvent], clock: EventClock, grace_ms: int, wall_ms: int, source: Source
    ) -> SlaOutcome:
        """The events of one message in order: each comment event moves `clock`, fires what came due up to
        the clock minus `grace_ms`, then applies (`advance` and `on_event` per comment, in one outcome)."""
        outcome = SlaOutcome()
        due = self._due
        for event in events:
            if event.type not in COMMENT_TYPES:
                continue
            clock.observe(event.ts_ms, wall_ms)
            if due and due[0][0] <= clock.max_event_ms - grace_ms:
                self._advance(clock.max_event_ms - grace_ms, outcome, source)
            self._apply(event, outcome, source)
        return outcome

    def _apply(self, event: CanonicalEvent, outcome: SlaOutcome, source: Source) -> None:
        kind = event.type
        if kind not in COMMENT_TYPES or event.comment_id is None:
            return
        if kind is EventType.COMMENT_DELETE:
            self._cancel(event, outcome, source)
        elif kind is EventType.COMMENT:
            if event.by_community:
                self._reply(event, outcome, source)
            else:
                self._open(event, outcome, source)

    def _advance(self, now_ms: int, outcome: SlaOutcome, source: Source) -> None:
        due = self._due
        while due and due[0][0] <= now_ms:
            when, key = heapq.heappop(due)
            clock = self._clocks.get(key)
            if clock is None or not clock.open:
                continue
            if clock.at_risk_ms == when and not clock.warned and when < clock.deadline_ms:
                clock.warned = True
                outcome.alerts.append(self._fire(clock, AlertKind.AT_RISK, when, source))
            elif when == clock.deadline_ms and not clock.breached:
                clock.breached = True
                outcome.alerts.append(self._fire(clock, AlertKind.UNANSWERED, when, source))
                outcome.records.append(self._record(clock))
            else:
                continue
            clock.changed_by = source
            self._changed.add((CLOCK, key))

    def reemit(self, topic: str, from_offset: int) -> SlaOutcome:
        """The records and alerts produced while processing `topic` from `from_offset` on, as they are now."""
        outcome = SlaOutcome()
        for clock in self._clocks.values():
            if clock.changed_by[0] == topic and clock.changed_by[1] >= from_offset:
                outcome.records.append(self._record(clock))
            for kind, (src_topic, offset, at_ms) in clock.fired_by.items():
                if src_topic == topic and offset >= from_offset:
                    outcome.alerts.append(self._alert(clock, AlertKind(kind), at_ms))
        return outcome

    def evict(self, now_ms: int) -> None:
        """Forgets clocks and early replies too old to matter (see `SlaPolicy`)."""
        horizon = now_ms - self.policy.keep_clocks_ms
        clocks, expiring = self._clocks, self._deadlines
        while expiring and expiring[0][0] < horizon:
            _, key = heapq.heappop(expiring)
            clock = clocks.get(key)
            if clock is not None and clock.deadline_ms < horizon:
                self._running -= clocks.pop(key).open
                self._changed.add((CLOCK, key))
        horizon = now_ms - self.policy.remember_replies_ms
        replies, expiring = self._early_replies, self._replied
        while expiring and expiring[0][0] < horizon:
            _, key = heapq.heappop(expiring)
            ts = replies.get(key)
            if ts is not None and ts < horizon:
                del replies[key]
                self._changed.add((EARLY_REPLY, key))

    def forget_author(self, platform: str, user_id: str) -> int:
        """Drops the clocks of every comment `user_id` wrote on `platform` (their ids, times and snippets);
        returns how many. Their alerts were already sent: the warehouse and the topics' retention see to
        those."""
        gone = [k for k, c in self._clocks.items() if k[0] == platform and c.comment.author_id == user_id]
        for key in gone:
            self._running -= self._clocks.pop(key).open
            self._changed.add((CLOCK, key))
        return len(gone)

    def drain_changes(self) -> dict[tuple[str, ClockKey], bytes | None]:
        """The state to persist for every clock and early reply changed since the last call (None: gone)."""
        changes: dict[tuple[str, ClockKey], bytes | None] = {}
        for ns, key in self._changed:
            if ns == CLOCK:
                clock = self._clocks.get(key)
                changes[(ns, key)] = None if clock is None else _encode_clock(clock)
            else:
                ts = self._early_replies.get(key)
                changes[(ns, key)] = None if ts is None else encode_reply_ts(ts)
        self._changed.clear()
        return changes

    def restore(self, ns: str, key: ClockKey, state: bytes) -> None:
        if ns == EARLY_REPLY:
            ts = self._early_replies[key] = decode_reply_ts(state)
            heapq.heappush(self._replied, (ts, key))
            return
        s = decode_clock(state)
        clock = _Clock(
            s.comment, s.deadline_ms, s.at_risk_ms, s.answered_at_ms, s.warned, s.breached, s.cancelled,
            s.changed_by, dict(s.fired_by),
        )  # fmt: skip
        replaced = self._clocks.get(key)
        self._running += clock.open - (replaced is not None and replaced.open)
        self._clocks[key] = clock
        heapq.heappush(self._deadlines, (clock.deadline_ms, key))
        if clock.open:
            if not clock.breached:
                heapq.heappush(self._due, (clock.deadline_ms, key))
            if clock.at_risk_ms is not None and not clock.warned:
                heapq.heappush(self._due, (clock.at_risk_ms, key))

    def _open(self, event: CanonicalEvent, outcome: SlaOutcome, source: Source) -> None:
        key = (event.platform, event.community_id, event.comment_id or "")
        if key in self._clocks:
            return  # a redelivered comment: its clock already runs
        sla_ms = self.policy.sla_ms(event.community_id)
        fraction = self.policy.at_risk_fraction
        at_risk = event.ts_ms + int(sla_ms * fraction) if fraction else None
        clock = _Clock(ClockComment.of(event), event.ts_ms + sla_ms, at_risk, changed_by=source)
        self._clocks[key] = clock
        heapq.heappush(self._deadlines, (clock.deadline_ms, key))
        self._changed.add((CLOCK, key))
        early = self._early_replies.pop(key, None)
        if early is not None:
            self._changed.add((EARLY_REPLY, key))
            clock.answered_at_ms = max(early, event.ts_ms)
        else:
            heapq.heappush(self._due, (clock.deadline_ms, key))
            if at_risk is not None:
                heapq.heappush(self._due, (at_risk, key))
            self._running += 1
        outcome.records.append(self._record(clock))

    def _reply(self, event: CanonicalEvent, outcome: SlaOutcome, source: Source) -> None:
        if event.parent_id is None:
            return
        key = (event.platform, event.community_id, event.parent_id)
        clock = self._clocks.get(key)
        if clock is None:
            if key not in self._early_replies:
                self._early_replies[key] = event.ts_ms
                heapq.heappush(self._replied, (event.ts_ms, key))
                self._changed.add((EARLY_REPLY, key))
            return
        if not clock.open:
            return  # already answered (the first reply counts) or deleted
        clock.answered_at_ms = max(event.ts_ms, clock.comment.commented_at_ms)
        self._running -= 1
        clock.changed_by = source
        self._changed.add((CLOCK, key))
        outcome.records.append(self._record(clock))
        if clock.breached:
            outcome.alerts.append(self._fire(clock, AlertKind.RESOLVED, clock.answered_at_ms, source))

    def _cancel(self, event: CanonicalEvent, outcome: SlaOutcome, source: Source) -> None:
        key = (event.platform, event.community_id, event.comment_id or "")
        clock = self._clocks.get(key)
        if clock is not None and clock.open:
            clock.cancelled = True
            self._running -= 1
            clock.changed_by = source
            self._changed.add((CLOCK, key))
            outcome.records.append(self._record(clock))

    def _fire(self, clock: _Clock, kind: AlertKind, at_ms: int, source: Source) -> Alert:
        clock.fired_by[kind.value] = (*source, at_ms)
        return self._alert(clock, kind, at_ms)

    @staticmethod
    def _alert(clock: _Clock, kind: AlertKind, at_ms: int) -> Alert:
        c = clock.comment
        # Only a `resolved` alert carries the response: the others describe the moment they fired, so an
        # alert re-emitted after a restart (when the reply may have landed since) is the same record.
        response_s = None
        if kind is AlertKind.RESOLVED and clock.answered_at_ms is not None:
            response_s = (clock.answered_at_ms - c.commented_at_ms) / 1000
        return Alert(
            alert_id=f"{c.platform}:{c.community_id}:{c.comment_id}:{kind.value}",
            kind=kind,
            platform=c.platform,
            community_id=c.community_id,
            post_id=c.post_id,
            comment_id=c.comment_id,
            author_id=c.author_id,
            snippet=c.snippet,
            commented_at_ms=c.commented_at_ms,
            fired_at_ms=at_ms,
            waited_s=(at_ms - c.commented_at_ms) / 1000,
            sla_s=(clock.deadline_ms - c.commented_at_ms) / 1000,
            response_s=response_s,
        )

    @staticmethod
    def _record(clock: _Clock) -> SlaRecord:
        c = clock.comment
        return SlaRecord(
            platform=c.platform,
            comment_id=c.comment_id,
            community_id=c.community_id,
            post_id=c.post_id,
            author_id=c.author_id,
            commented_at_ms=c.commented_at_ms,
            sla_s=(clock.deadline_ms - c.commented_at_ms) / 1000,
            answered_at_ms=clock.answered_at_ms,
            breached=clock.breached,
            cancelled=clock.cancelled,
        )


def _encode_clock(c: _Clock) -> bytes:
    return encode_clock(
        ClockState(
            c.comment,
            c.deadline_ms,
            c.at_risk_ms,
            c.answered_at_ms,
            c.warned,
            c.breached,
            c.cancelled,
            c.changed_by,
            c.fired_by,
        )
    )


LAG_MEMORY_MS = 10_000  # how long the smallest ingestion lag seen stands for the stream's (see EventClock)


@dataclass(slots=True)
class EventClock:
    """The stream's event time, carried on by the wall clock while a live stream is quiet.

    A stream is history while its events are seen long after they happened (a replay, a backlog): then
    `now(wall)` is the newest event time E, so a replay of last week gives the same alerts however fast it
    runs, or whenever a worker restarts in the middle. A stream is live while its events are seen within
    `live_lag_ms` of happening: then `now(wall)` is `wall - lag`, where `lag` is the smallest ingestion lag
    (seen minus happened) of the newest events seen within the last `LAG_MEMORY_MS`. So a live post that
    goes quiet still reaches its deadlines in real time, a backlog being caught up (every event seen late)
    is still judged by its own times, and a platform that stamps whole seconds (VK) or one slow delivery
    do not hold the clock back: the smallest recent lag is the pipeline's own latency.

    `anchor_wall_ms` (persisted) is E + lag: `now` is E + (wall - anchor).
    """

    live_lag_ms: int = 300_000
    max_event_ms: int = 0
    anchor_wall_ms: int = 0
    _lag_ms: int | None = None  # the smallest recent ingestion lag, and when it was seen
    _lag_seen_at_ms: int = 0

    def observe(self, event_ms: int, wall_ms: int) -> None:
        if event_ms < self.max_event_ms:
            return  # an older event, out of order: its lag says nothing about the stream's
        lag = max(0, wall_ms - event_ms)  # a platform clock ahead of ours is not a negative lag
        if self._lag_ms is None or lag <= self._lag_ms or wall_ms - self._lag_seen_at_ms > LAG_MEMORY_MS:
            self._lag_ms, self._lag_seen_at_ms = lag, wall_ms
        self.max_event_ms = event_ms
        self.anchor_wall_ms = event_ms + self._lag_ms

    def restore(self, max_event_ms: int, anchor_wall_ms: int) -> None:
        self.max_event_ms, self.anchor_wall_ms = max_event_ms, anchor_wall_ms
        self._lag_ms, self._lag_seen_at_ms = None, 0

    @property
    def live(self) -> bool:
        # A lag of 0 is event time only (`pulse run --exit-when-done`): without the first test, an event
        # stamped at or ahead of the wall clock (lag 0) made such a stream live, so its deadlines followed
        # the wall clock and depended on how long the run took.
        return self.live_lag_ms > 0 and abs(self.anchor_wall_ms - self.max_event_ms) <= self.live_lag_ms

    def now(self, wall_ms: int) -> int:
        if not self.live:
            return self.max_event_ms
        return max(self.max_event_ms, self.max_event_ms + (wall_ms - self.anchor_wall_ms))
