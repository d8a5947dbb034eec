"""One partition's processing, crash and restart included, without a broker: the changelog is a dict."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from agents import Simulator, SimulatorSettings
from pipeline.stream.partition import Effects, PartitionProcessor, ProcessingRules
from pipeline.stream.sla import SlaPolicy
from pipeline.stream.state_format import key_partition
from schemas import Topics, encode_message
from schemas.outputs import WindowValue

TOPICS = Topics()
RULES = ProcessingRules(
    allowed_lateness_ms=60_000, sla=SlaPolicy(default_s=600, at_risk_fraction=0.5), sla_grace_ms=0
)
WALL_MS = 1_900_000_000_000  # long after the simulated history: the stream is not live


def messages(events: int = 6_000, seed: int = 3) -> list[tuple[str, int, bytes]]:
    """The simulator's events as one partition's messages of up to 40 events, (topic, offset, value)."""
    # follow_share=0: the stream these tests were written against (follows go to no processor input, and
    # drawing them would shift every later event).
    sim = Simulator(
        SimulatorSettings(communities=3, events_per_sim_s=2.0, answer_median_s=400, seed=seed, follow_share=0)
    )
    offsets = dict.fromkeys((*TOPICS.processor_inputs, TOPICS.ticks), 0)
    out = []
    by_topic: dict[str, list] = {}  # type: ignore[type-arg]
    for i, event in enumerate(sim.events(count=events)):
        topic = TOPICS.for_type(event.type)
        if topic not in TOPICS.processor_inputs:  # posts and follows: not the processors' inputs
            continue
        batch = by_topic.setdefault(topic, [])
        batch.append(event)
        if len(batch) == 40:
            out.append((topic, offsets[topic], encode_message(batch)))
            offsets[topic] += 1
            by_topic[topic] = []
        if i % 300 == 0:
            out.append((TOPICS.ticks, offsets[TOPICS.ticks], b""))
            offsets[TOPICS.ticks] += 1
    return out


@dataclass
class Downstream:
    """What the sinks end up with: the last value per window and comment, every alert id."""

    windows: dict[tuple[str, str, int], WindowValue] = field(default_factory=dict)
    sla: dict[str, tuple[int | None, bool, bool]] = field(default_factory=dict)
    alerts: set[str] = field(default_factory=set)

    def take(self, effects: Effects) -> None:
        for w in effects.windows:
            self.windows[(w.community_id, w.post_id, w.minute_ms)] = w
        for r in effects.sla_records:
            self.sla[r.comment_id] = (r.answered_at_ms, r.breached, r.cancelled)
        self.alerts |= {a.alert_id for a in effects.alerts}


def feed(processor: PartitionProcessor, message: tuple[str, int, bytes], settle: bool = True) -> Effects:
    """One message (a batch of one, unless `settle` is False: then its windows and state wait for the
    next `settle()`)."""
    topic, offset, value = message
    if topic == TOPICS.ticks:
        effects = processor.tick(topic, offset, WALL_MS, input_topics=TOPICS.processor_inputs)
    else:
        effects = processor.process(topic, offset, value, WALL_MS)
    if settle:
        settled = processor.settle()
        effects.windows, effects.state = settled.windows, settled.state
    return effects


def run_through(msgs: list[tuple[str, int, bytes]]) -> Downstream:
    processor, down = PartitionProcessor(0, RULES), Downstream()
    for message in msgs:
        down.take(feed(processor, message))
    return down


def test_the_undisturbed_run_counts_every_engagement_once() -> None:
    msgs = messages()
    down = run_through(msgs)
    engagements = sum(
        1
        for topic, _, value in msgs
        if topic != TOPICS.ticks
        for line in value.split(b"\n")
        if line and b'"type":"comment_delete"' not in line and b'"type":"comment_edit"' not in line
    )
    counted = sum(w.likes + w.unlikes + w.comments + w.reposts for w in down.windows.values())
    assert counted == engagements, "the simulator sends no duplicates and, per topic, nothing late"
    assert len(down.windows) > 300 and len(down.sla) > 500
    assert any(a.endswith(":unanswered_comment") for a in down.alerts)
    assert any(a.endswith(":resolved") for a in down.alerts)


def test_crash_between_commit_and_changelog_gives_the_undisturbed_results() -> None:
    msgs = messages()
    undisturbed = run_through(msgs)
    for committed, crashed in [(100, 180), (150, 151), (0, 60), (200, 260)]:
        processor, down, changelog = PartitionProcessor(0, RULES), Downstream(), {}
        for i, message in enumerate(msgs[:crashed]):
            effects = feed(processor, message)
            writes = list(effects.state.items())
            if i == crashed - 1:
                writes = writes[: len(writes) // 2]  # the changelog was cut short in this message
            changelog.update(writes)
            if i < committed:
                down.take(effects)  # outputs of uncommitted messages may be lost: assume the worst
        restarted = PartitionProcessor(0, RULES)
        restarted.restore(((k, v) for k, v in changelog.items() if v is not None), TOPICS.processor_inputs)
        for message in msgs[committed:]:
            down.take(feed(restarted, message))
        assert down.windows == undisturbed.windows, (committed, crashed)
        assert down.sla == undisturbed.sla, (committed, crashed)
        assert down.alerts == undisturbed.alerts, (committed, crashed)


def run_batches(
    processor: PartitionProcessor, msgs: list[tuple[str, int, bytes]], size: int
) -> list[tuple[list[Effects], Effects]]:
    """Batches of `size` messages as the agent runs them: each message's effects, then the batch's settle."""
    out = []
    for start in range(0, len(msgs), size):
        each = [feed(processor, message, settle=False) for message in msgs[start : start + size]]
        out.append((each, processor.settle()))
    return out


def state_bytes(effects: Effects) -> int:
    return sum(len(value or b"") for value in effects.state.values())


def test_batches_give_the_results_of_single_messages_with_fewer_state_bytes() -> None:
    msgs = messages()
    undisturbed, single_bytes = Downstream(), 0
    processor = PartitionProcessor(0, RULES)
    for message in msgs:
        effects = feed(processor, message)
        undisturbed.take(effects)
        single_bytes += state_bytes(effects)
    batched, batch_bytes = Downstream(), 0
    for each, settled in run_batches(PartitionProcessor(0, RULES), msgs, 8):
        for effects in [*each, settled]:
            batched.take(effects)
        batch_bytes += state_bytes(settled)
    assert batched == undisturbed
    assert batch_bytes < single_bytes * 0.85, (batch_bytes, single_bytes)  # seen: 24% fewer


@pytest.mark.parametrize("seed", [3, 5])
def test_crash_within_a_batch_or_its_settle_gives_the_undisturbed_results(seed: int) -> None:
    """Offsets are committed at batch ends only, after the batch's state was written. A crash before the
    settle loses the batch's state: the restart reads the batch again from the last commit. Ticks and the
    restore are told the input topics, as the worker tells them: with seed 5, a restore that was not
    closed windows a topic never seen yet (comments) then reopened with empty sets (engagers undercounted)."""
    msgs, size = messages(seed=seed), 6
    undisturbed = run_through(msgs)
    batches = run_batches(PartitionProcessor(0, RULES), msgs, size)
    for committed, crashed, cut in [(10, 14, None), (10, 14, 0.5), (0, 3, None), (20, 21, 0.0), (5, 26, 0.9)]:
        down, changelog = Downstream(), {}
        for i, (each, settled) in enumerate(batches[: crashed + 1]):
            writes = list(settled.state.items())
            if i == crashed:  # the crash came before the settle (None), or cut its changelog short
                writes = [] if cut is None else writes[: int(len(writes) * cut)]
            changelog.update(writes)
            if i < committed:
                for effects in [*each, settled]:
                    down.take(effects)  # outputs of uncommitted batches may be lost: assume the worst
        restarted = PartitionProcessor(0, RULES)
        restarted.restore(((k, v) for k, v in changelog.items() if v is not None), TOPICS.processor_inputs)
        for each, settled in run_batches(restarted, msgs[committed * size :], size + 1):
            for effects in [*each, settled]:
                down.take(effects)
        assert down.windows == undisturbed.windows, (committed, crashed, cut)
        assert down.sla == undisturbed.sla, (committed, crashed, cut)
        assert down.alerts == undisturbed.alerts, (committed, crashed, cut)


def test_bad_lines_are_rejected_with_their_bytes_and_good_neighbours_counted() -> None:
    processor = PartitionProcessor(0, RULES)
    good = next(value for topic, _, value in messages(400) if topic == TOPICS.likes).split(b"\n")
    value = b"\n".join([good[0], b'{"event_id": 1}', b"\xff\xfe", good[1]])
    effects = processor.process(TOPICS.likes, 0, value, WALL_MS)
    assert [(r.line, r.raw) for r in effects.rejected] == [(2, b'{"event_id": 1}'), (3, b"\xff\xfe")]
    assert sum(w.likes + w.comments + w.reposts + w.unlikes for w in processor.settle().windows) == 2
    stats = processor.tick(TOPICS.ticks, 0, WALL_MS).stats
    assert stats is not None and (stats.events, stats.rejected_lines) == (2, 2)


def test_late_events_are_counted_and_kept_out_of_windows() -> None:
    processor = PartitionProcessor(0, RULES)
    events = [
        e
        for e in Simulator(SimulatorSettings(seed=5, events_per_sim_s=0.5)).events(count=400)
        if e.type.value == "like"
    ]
    newest, oldest = events[-1], events[0]
    assert newest.ts_ms - oldest.ts_ms > RULES.allowed_lateness_ms
    processor.process(TOPICS.likes, 0, encode_message([newest]), WALL_MS)
    assert len(processor.settle().windows) == 1
    processor.process(TOPICS.likes, 1, encode_message([oldest]), WALL_MS)
    assert processor.settle().windows == []
    stats = processor.tick(TOPICS.ticks, 0, WALL_MS).stats
    assert stats is not None and stats.late_events == 1


def test_restore_skips_other_partitions_entries() -> None:
    msgs = messages(400)
    likes = [value for topic, _, value in msgs if topic == TOPICS.likes]
    state = {}
    for partition, value in enumerate(likes[:2]):
        processor = PartitionProcessor(partition, RULES)
        processor.process(TOPICS.likes, 0, value, WALL_MS)
        state |= processor.settle().state
    own = sum(1 for k in state if key_partition(k) == 1)
    assert 0 < own < len(state)
    fresh = PartitionProcessor(1, RULES)
    assert fresh.restore((k, v) for k, v in state.items() if v is not None) == own


def test_the_end_of_a_bounded_input_judges_deadlines_no_comment_of_this_partition_reached() -> None:
    from schemas import CanonicalEvent

    ts = 1_795_000_000_000
    comment = CanonicalEvent("c1", "comment", "vk", "g1", "p1", "u1", ts, comment_id="m1", text="anyone?")
    processor = PartitionProcessor(0, RULES)
    processor.process(TOPICS.comments, 0, encode_message([comment]), WALL_MS)
    assert processor.tick(TOPICS.ticks, 0, WALL_MS).alerts == [], "this partition saw no later event"
    effects = processor.tick(TOPICS.ticks, 1, WALL_MS, end_of_input_ms=ts + 600_000)
    assert sorted(a.kind.value for a in effects.alerts) == ["at_risk", "unanswered_comment"]
    assert processor.tick(TOPICS.ticks, 2, WALL_MS, end_of_input_ms=ts).alerts == [], "time never goes back"


def test_windows_stay_open_while_an_input_topic_has_never_been_seen() -> None:
    """Likes read first, a tick, then the same minute's comments: the window must still count its
    engagers exactly (seen before this was fixed: the tick closed it and the comments reopened it empty)."""
    from schemas import CanonicalEvent

    minute = 1_795_000_020_000 - 1_795_000_020_000 % 60_000
    likes = [CanonicalEvent(f"l{i}", "like", "vk", "g1", "p1", f"u{i}", minute + i * 1000) for i in range(3)]
    later = CanonicalEvent("l9", "like", "vk", "g1", "p1", "u9", minute + 10 * 60_000)  # moves the watermark
    comment = CanonicalEvent(
        "c1", "comment", "vk", "g1", "p1", "u0", minute + 5_000, comment_id="m1", text="hi"
    )

    def minute_value(inputs: tuple[str, ...]) -> WindowValue:
        processor = PartitionProcessor(0, RULES)
        processor.process(TOPICS.likes, 0, encode_message([*likes, later]), WALL_MS)
        processor.tick(TOPICS.ticks, 0, WALL_MS, input_topics=inputs)
        processor.settle()
        processor.process(TOPICS.comments, 0, encode_message([comment]), WALL_MS)
        return next(w for w in processor.settle().windows if w.minute_ms == minute)

    held = minute_value(TOPICS.processor_inputs)
    assert (held.likes, held.comments, held.unique_engagers) == (3, 1, 3), "u0 liked and commented: 3 people"
    closed = minute_value(())  # no topic to wait for: the tick closes the window, as before
    assert (closed.likes, closed.comments) == (3, 1)


def test_an_event_from_the_future_is_rejected_and_moves_no_clock() -> None:
    """A comment stamped a day ahead used to move the partition's event time a day forward: every open SLA
    clock fired at once and every later event was late. It is rejected (naming `ts`), nothing else moves."""
    from schemas import CanonicalEvent, EventAhead

    wall = 1_795_000_000_000  # a live stream: events seen a second after they happened
    comment = CanonicalEvent("c1", "comment", "vk", "g1", "p1", "u1", wall - 1_000, comment_id="m1")
    ahead = CanonicalEvent("c2", "comment", "vk", "g1", "p1", "u2", wall + 86_400_000, comment_id="m2")
    later = CanonicalEvent("c3", "comment", "vk", "g1", "p1", "u3", wall + 1_000, comment_id="m3")
    processor = PartitionProcessor(0, RULES)
    effects = processor.process(TOPICS.comments, 0, encode_message([comment, ahead]), wall)
    assert [(r.line, r.error.field, type(r.error)) for r in effects.rejected] == [(2, "ts", EventAhead)]
    assert "86400 s (24 h) ahead of the wall clock" in str(effects.rejected[0].error)
    assert effects.alerts == [], "no SLA clock fired early"
    processor.process(TOPICS.comments, 1, encode_message([later]), wall + 2_000)
    windows = processor.settle().windows
    assert sum(w.comments for w in windows) == 2 and all(w.minute_ms < wall + 60_000 for w in windows)
    assert processor.tick(TOPICS.ticks, 0, wall + 3_000).alerts == [], "deadlines are 10 minutes away"
    stats = processor.tick(TOPICS.ticks, 1, wall + 3_000).stats
    assert stats is not None and (stats.late_events, stats.rejected_lines, stats.waiting_comments) == (
        0,
        1,
        2,
    )
    # Within the skew (five minutes by default) an event is a platform clock a little ahead: counted.
    near = CanonicalEvent("c4", "comment", "vk", "g1", "p1", "u4", wall + 4 * 60_000, comment_id="m4")
    assert processor.process(TOPICS.comments, 2, encode_message([near]), wall).rejected == []


def test_a_saved_clock_ahead_of_the_wall_clock_is_forgotten_on_restore() -> None:
    """State written before future events were rejected: the next events set the clocks again."""
    from schemas import CanonicalEvent

    wall = 1_795_000_000_000
    lax = ProcessingRules(RULES.allowed_lateness_ms, RULES.sla, sla_grace_ms=0, max_clock_skew_ms=10**12)
    poisoned = PartitionProcessor(0, lax)
    comment = CanonicalEvent("c1", "comment", "vk", "g1", "p1", "u1", wall - 1_000, comment_id="m1")
    ahead = CanonicalEvent("c2", "comment", "vk", "g1", "p1", "u2", wall + 86_400_000, comment_id="m2")
    poisoned.process(TOPICS.comments, 0, encode_message([comment, ahead]), wall)
    saved = {k: v for k, v in poisoned.settle().state.items() if v is not None}
    restored = PartitionProcessor(0, RULES)
    restored.restore(saved.items(), (TOPICS.comments,), wall_ms=wall + 1_000)
    assert (
        restored.sla_clock.max_event_ms == 0
        and TOPICS.comments not in restored.engagement.max_event_ms_by_topic
    )
    later = CanonicalEvent("c3", "comment", "vk", "g1", "p1", "u3", wall + 1_000, comment_id="m3")
    effects = restored.process(TOPICS.comments, 1, encode_message([later]), wall + 2_000)
    assert effects.alerts == [] and restored.sla_clock.max_event_ms == wall + 1_000
    assert sum(w.comments for w in restored.settle().windows if w.minute_ms <= wall + 1_000) >= 1


def test_an_erasure_leaves_no_trace_of_the_person_in_the_saved_state() -> None:
    """Windows open and closed, a response clock of their comment, an event id that names them: after the
    erasure tick, the state written (a changelog, compacted: the last value per key) holds nothing of
    them, and the other people's state is as it was."""
    from schemas import CanonicalEvent

    person, other = "person-to-erase", "someone-else"
    minute = 1_795_000_020_000 - 1_795_000_020_000 % 60_000
    old = [
        CanonicalEvent(f"vk:old{i}", "like", "vk", "g1", "p1", u, minute)
        for i, u in enumerate((person, other))
    ]
    later = minute + 10 * 60_000  # the old minute closes
    fresh = [
        CanonicalEvent(f"tg:1:7:reaction:{person}:{later}", "like", "vk", "g1", "p1", person, later),
        CanonicalEvent("vk-new-other", "like", "vk", "g1", "p1", other, later),
    ]
    comments = [CanonicalEvent(f"vk:c{i}", "comment", "vk", "g1", "p1", u, later, comment_id=f"m{i}",
                               text=f"hello from {u}") for i, u in enumerate((person, other))]  # fmt: skip
    processor = PartitionProcessor(0, RULES)
    changelog: dict[bytes, bytes | None] = {}
    processor.process(TOPICS.likes, 0, encode_message(old), WALL_MS)
    processor.process(TOPICS.likes, 1, encode_message(fresh), WALL_MS)
    processor.process(TOPICS.comments, 0, encode_message(comments), WALL_MS)
    processor.tick(TOPICS.ticks, 0, WALL_MS, input_topics=(TOPICS.likes,))  # closes the old minute
    changelog.update(processor.settle().state)
    assert any(person.encode() in (v or b"") for v in changelog.values()), "the person is in the state"
    before_other = {
        k: v for k, v in changelog.items() if v and other.encode() in v and person.encode() not in v
    }

    processor.erase(TOPICS.ticks, 1, "vk", person)
    changelog.update(processor.settle().state)
    assert not any(person.encode() in (v or b"") for v in changelog.values()), "no trace left"
    assert all(changelog[k] == v for k, v in before_other.items()), "the others' state as it was"
    restored = PartitionProcessor(0, RULES)
    restored.restore((k, v) for k, v in changelog.items() if v is not None)
    assert restored.sla.waiting == 1, "the other person's comment still waits for its answer"
