"""Everything one input partition's processing decides, as plain logic: what to emit and what to persist.

The faust agent (`pipeline.stream.app`) is a thin loop around this: it hands each Kafka message (or tick)
of a batch to the `PartitionProcessor` of its partition, then asks each of those processors to `settle()`
the batch, and carries out the returned `Effects` (send the outputs, write the state entries to the
changelogged table, dead-letter the rejected lines). No faust, no I/O here, so the whole behaviour,
restarts included, is unit-testable.

Per message: alerts, SLA records and rejected lines (what someone waits for). Per batch (`settle()`): the
windows the batch touched, each once with its absolute value, and the state it changed, each key once. A
busy window is touched by many messages in a row, and its state holds every event id it counted, so
writing it once per batch instead of once per message is most of the changelog's bytes (measured on the
end-to-end bench's 300k events: 26k window writes with one message per batch, 7.7k with 16, 2.9k with
64). A batch fills only while messages wait (a backlog): a live stream's batches are the few messages
that came within `batch_wait_s`, so the size costs a live stream no latency. The offsets
of a batch's messages may be committed only after its settled state was sent (the agent acks them after
carrying out `settle()`); a crash before that re-reads the whole batch.

One partition number covers the same partition of every input topic (likes, comments, reposts and the
internal ticks): the agent consumes them together and faust assigns co-partitioned topics together, so a
post's likes, comments and replies all meet in the same processor.

The SLA clock runs on the comments' event time only (replies travel in the comments topic, in order with
the comments they answer), minus a small grace for replies that arrive a moment out of order; likes racing
ahead in their own topic can therefore never fire an alert whose reply is still queued.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

from pipeline.stream.engagement import EngagementBook, Verdict
from pipeline.stream.sla import CommentSlaBook, EventClock, SlaPolicy
from pipeline.stream.spikes import SpikeRules, SpikeWatch
from pipeline.stream.state_format import (
    AGE_CURVE,
    CLOCK,
    COUNTERS,
    EARLY_REPLY,
    SPIKE,
    WINDOW,
    PartitionCounters,
    belongs_to,
    decode_counters,
    decode_curve,
    decode_key,
    decode_spike,
    encode_counters,
    state_key,
)
from schemas import ClockLimit, Rejected, decode_events
from schemas.outputs import Alert, PartitionStats, RollingValue, SlaRecord, WindowValue

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ProcessingRules:
    """The judgement calls, in one place (built from `ProcessorSettings` by the entry point)."""

    allowed_lateness_ms: int
    sla: SlaPolicy
    sla_grace_ms: int = 1_000  # event time: for replies a moment out of order with later events
    live_lag_ms: int = 300_000
    live_grace_ms: int = 250  # live: for a reply on its way (it is still counted later: `resolved`)
    rolling_every_ms: int = 1_000  # wall clock between two publications of rolling totals
    evict_every_ms: int = 60_000  # event time between evictions of closed windows and old clocks
    max_clock_skew_ms: int = 300_000  # events stamped further ahead of the wall clock are rejected
    spikes: SpikeRules | None = field(default_factory=SpikeRules)  # None: no spike alerts


@dataclass(slots=True)
class Effects:
    windows: list[WindowValue] = field(default_factory=list)
    rolling: list[RollingValue] = field(default_factory=list)
    sla_records: list[SlaRecord] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    stats: PartitionStats | None = None
    state: dict[bytes, bytes | None] = field(default_factory=dict)  # table writes, in this order


class PartitionProcessor:
    def __init__(self, partition: int, rules: ProcessingRules) -> None:
        self.partition = partition
        self.rules = rules
        self.engagement = EngagementBook(rules.allowed_lateness_ms)
        self.sla = CommentSlaBook(rules.sla)
        self.sla_clock = EventClock(live_lag_ms=rules.live_lag_ms)
        self.spikes = SpikeWatch(rules.spikes, self.engagement.windows) if rules.spikes else None
        self._counters = PartitionCounters()
        self._resumed: set[str] = set()  # topics read at least once since this processor began
        self._rolled_at_ms = 0  # wall clock of the last rolling totals published

    def restore(
        self,
        entries: Iterable[tuple[bytes, bytes]],
        input_topics: Collection[str] = (),
        wall_ms: int | None = None,
    ) -> int:
        """Takes back the persisted state of this partition (entries of other partitions are skipped).
        `input_topics`: the topics whose events it counts, all taken as having messages unread here (see
        `EngagementBook.closing_ms`). With `wall_ms`,
        event-time clocks saved ahead of the wall clock (by an event from the future, before such events
        were rejected) are forgotten, so the next events set them again."""
        restored = 0
        partition = self.partition
        windows: list[tuple[tuple[str, str, str, int], bytes]] = []  # restored once the counters are known
        for raw_key, value in entries:
            if not belongs_to(raw_key, partition):
                continue
            key = decode_key(raw_key)
            ns = key[1]
            if ns == WINDOW:
                windows.append(((key[2], key[3], key[4], key[5]), value))
            elif ns in (CLOCK, EARLY_REPLY):
                self.sla.restore(ns, (key[2], key[3], key[4]), value)
            elif ns == COUNTERS:
                self._counters = decode_counters(value)
            elif ns == AGE_CURVE and self.spikes is not None:
                self.spikes.restore_curve((key[2], key[3]), decode_curve(value))
            elif ns == SPIKE and self.spikes is not None:
                self.spikes.restore_episode((key[2], key[3], key[4]), decode_spike(value))
            restored += 1
        c = self._counters
        if wall_ms is not None:
            self._forget_clocks_ahead(wall_ms + self.rules.max_clock_skew_ms)
        self.engagement.max_event_ms_by_topic = dict(c.max_event_ms_by_topic)
        closing = self.engagement.closing_ms(input_topics, unread_topics=input_topics)
        for window_key, value in windows:
            self.engagement.restore(window_key, value, closing)
        self.engagement.close_passed(input_topics, unread_topics=input_topics)
        self.engagement.late_events, self.engagement.duplicate_events = c.late_events, c.duplicate_events
        self.sla_clock.restore(c.sla_event_ms, c.sla_anchor_wall_ms)
        if self.spikes is not None:
            self.spikes.folded_to_ms = c.curves_folded_to_ms
            self.spikes.track_restored()
        return restored

    def process(self, topic: str, offset: int, value: bytes, wall_ms: int) -> Effects:
        """One input message: its events counted, clocks moved; its alerts, SLA records and rejected lines
        returned (its windows and state come with the batch's `settle()`)."""
        effects = Effects()
        self._resume(topic, offset, effects)
        source = (topic, offset)
        engagement, sla, clock = self.engagement, self.sla, self.sla_clock
        grace = self.rules.sla_grace_ms
        # An event stamped ahead of the wall clock (beyond the skew) is rejected before it reaches a clock:
        # one such event once moved the partition's event time ahead, dropping every later event as late.
        items, effects.rejected = decode_events(value, ClockLimit(wall_ms, self.rules.max_clock_skew_ms))
        verdicts = engagement.add_message(items, source)
        events = len(verdicts) - verdicts.count(Verdict.REPLAYED)
        if self.spikes is not None and Verdict.COUNTED in verdicts:
            counted: dict[tuple[str, str, str], tuple[int, int]] = {}
            for item, verdict in zip(items, verdicts, strict=True):
                if verdict is Verdict.COUNTED:
                    post = (item.platform, item.community_id, item.post_id)
                    count, newest = counted.get(post, (0, 0))
                    counted[post] = (count + 1, max(newest, item.ts_ms))
            effects.alerts += self.spikes.judge(counted, source)
        outcome = sla.on_message(items, clock, grace, wall_ms, source)
        effects.alerts += outcome.alerts
        effects.sla_records += outcome.records
        self._counters.events += events
        self._counters.rejected_lines += len(effects.rejected)
        return effects

    def settle(self) -> Effects:
        """What the messages and ticks since the last call changed, once each: the absolute value of every
        window they touched, and the state entries to persist (counters last). Their offsets may be
        committed only once this state is on its way to the changelog."""
        effects = Effects(windows=self.engagement.drain_touched())
        self._persist(effects)
        return effects

    def tick(
        self,
        topic: str,
        offset: int,
        wall_ms: int,
        end_of_input_ms: int | None = None,
        input_topics: Collection[str] = (),
        unread_topics: Collection[str] = (),
    ) -> Effects:
        """The wall clock moved: fire what is due on a live stream, publish rolling totals and counters.

        `end_of_input_ms`: the newest event time of the whole input, sent when a bounded input (a replayed
        file) has been read. Each partition's clock only sees its own comments; this brings every
        partition to the stream's time, so every deadline the input passed is judged, in any partition.
        `input_topics`: the topics whose events it counts; `unread_topics`: those with messages not yet
        read in this partition, as the consumer knows them (see `EngagementBook.closing_ms`)."""
        effects = Effects()
        self._resume(topic, offset, effects)
        if end_of_input_ms is not None:
            end_of_input_ms = min(end_of_input_ms, wall_ms + self.rules.max_clock_skew_ms)
            self.sla_clock.observe(end_of_input_ms, wall_ms)
        grace = self.rules.live_grace_ms if self.sla_clock.live else self.rules.sla_grace_ms
        now = self.sla_clock.now(wall_ms) - grace
        outcome = self.sla.advance(now, (topic, offset))
        effects.alerts += outcome.alerts
        effects.sla_records += outcome.records
        if wall_ms - self._rolled_at_ms >= self.rules.rolling_every_ms or end_of_input_ms is not None:
            # Not on every beat: a backlog changes thousands of posts between two beats, and each total
            # sums a day of the post's minutes (measured: 4% of a worker's CPU on the realistic bench).
            effects.rolling = self.engagement.drain_rolling()
            self._rolled_at_ms = wall_ms
        c = self._counters
        event_now = max(self.engagement.max_event_ms, self.sla_clock.max_event_ms)
        if event_now - c.evicted_at_ms >= self.rules.evict_every_ms:
            self.engagement.evict(input_topics, unread_topics)
            self.sla.evict(self.sla_clock.max_event_ms)
            c.evicted_at_ms = event_now
        if self.spikes is not None:
            self.spikes.fold(self.engagement.slowest_active_ms)
        effects.stats = PartitionStats(
            partition=self.partition,
            events=c.events,
            late_events=c.late_events,
            duplicate_events=c.duplicate_events,
            rejected_lines=c.rejected_lines,
            waiting_comments=self.sla.waiting,
            watermark_ms=self.engagement.watermark_ms,
            emitted_at_ms=wall_ms,
        )
        return effects

    def erase(self, topic: str, offset: int, platform: str, user_id: str) -> Effects:
        """An erasure tick: forgets the person in the windows and the response clocks; the changed state
        goes out with the batch's `settle()` (a dropped clock as a tombstone)."""
        effects = Effects()
        self._resume(topic, offset, effects)
        windows = self.engagement.forget_person(platform, user_id)
        clocks = self.sla.forget_author(platform, user_id)
        log.info(
            "partition %d: erased %s:%s from %d windows (saved again) and %d response clocks",
            self.partition, platform, user_id, windows, clocks,
        )  # fmt: skip
        return effects

    def _forget_clocks_ahead(self, latest_ms: int) -> None:
        c = self._counters
        ahead = {topic for topic, ms in c.max_event_ms_by_topic.items() if ms > latest_ms}
        if ahead or c.sla_event_ms > latest_ms:
            log.warning(
                "partition %d: the saved event time is ahead of the wall clock (%s; SLA clock %d): forgotten, "
                "the next events set it again",
                self.partition, {t: c.max_event_ms_by_topic[t] for t in sorted(ahead)}, c.sla_event_ms,
            )  # fmt: skip
        for topic in ahead:
            del c.max_event_ms_by_topic[topic]
        if c.sla_event_ms > latest_ms:
            c.sla_event_ms = c.sla_anchor_wall_ms = 0
        if c.evicted_at_ms > latest_ms:
            c.evicted_at_ms = 0
        if c.curves_folded_to_ms > latest_ms:
            c.curves_folded_to_ms = 0

    def _resume(self, topic: str, offset: int, effects: Effects) -> None:
        """On the first message of a topic, re-emit what was produced from that offset on before a restart:
        those messages were not committed, so their outputs may have been lost."""
        if topic in self._resumed:
            return
        self._resumed.add(topic)
        outcome = self.sla.reemit(topic, offset)
        effects.alerts += outcome.alerts
        if self.spikes is not None:
            effects.alerts += self.spikes.reemit(topic, offset)
        effects.sla_records += outcome.records

    def _persist(self, effects: Effects) -> None:
        p = self.partition
        state = effects.state
        for (platform, community, post, minute), window in self.engagement.drain_changes().items():
            state[state_key(p, WINDOW, platform, community, post, minute)] = window
        for (ns, (platform, community, comment)), clock in self.sla.drain_changes().items():
            state[state_key(p, ns, platform, community, comment)] = clock
        if self.spikes is not None:
            for ns, parts, value in self.spikes.drain_changes():
                state[state_key(p, ns, *parts)] = value
        c = self._counters
        c.max_event_ms_by_topic = self.engagement.max_event_ms_by_topic
        c.late_events, c.duplicate_events = self.engagement.late_events, self.engagement.duplicate_events
        c.sla_event_ms, c.sla_anchor_wall_ms = self.sla_clock.max_event_ms, self.sla_clock.anchor_wall_ms
        c.curves_folded_to_ms = self.spikes.folded_to_ms if self.spikes is not None else 0
        # Last, so a changelog cut short by a crash never holds counters ahead of the entries they cover.
        state[state_key(p, COUNTERS)] = encode_counters(c)
