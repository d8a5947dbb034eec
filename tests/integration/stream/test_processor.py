"""The stream processors on the real broker: a hand-made sequence with known answers, and kill -9."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from agents import EventPublisher, PublisherSettings, Simulator, SimulatorSettings
from pulse.topics import TopicSettings, describe_topics, ensure_topics
from schemas import CanonicalEvent, KafkaSettings, validate
from schemas.outputs import Alert, PartitionStats, SlaRecord, WindowValue
from schemas.wire import state_changelog_topic
from tests.events import BASE_TS_MS
from tests.processor_worker import Worker

MIN = 60_000
T0 = BASE_TS_MS - BASE_TS_MS % MIN + 10 * MIN  # a minute boundary in last week's history


def at(spec: str) -> int:
    minutes, seconds = spec.split(":")
    return T0 + int(minutes) * MIN + int(seconds) * 1000


def ev(kind: str, eid: str, when: str, post: str, user: str, **fields: Any) -> CanonicalEvent:
    if kind == "comment":
        fields.setdefault("comment_id", eid)
    if kind == "comment_delete":
        fields.setdefault("comment_id", eid.removeprefix("del-"))
    return validate({"event_id": eid, "type": kind, "platform": "vk", "community_id": "c1", "post_id": post,
                     "user_id": user, "ts": at(when), **fields})  # fmt: skip


def reply(eid: str, when: str, post: str, parent: str, *, by_community: bool = True) -> CanonicalEvent:
    user = "c1-admin" if by_community else "u10"
    return ev("comment", eid, when, post, user, parent_id=parent, by_community=by_community)


# In stream order. SLA 10 min, warning at half of it, lateness 2 min, grace 1 s.
SEQUENCE = [
    ev("like", "L1", "0:05", "p1", "u1"),
    ev("like", "L2", "0:10", "p1", "u2"),
    ev("like", "L2", "0:10", "p1", "u2"),  # a duplicate: counts once
    ev("comment", "m1", "0:10", "p2", "u4"),  # never answered
    ev("like", "L3", "0:15", "p1", "u3"),
    ev("comment", "m2", "0:20", "p2", "u8"),  # answered in 5 min
    ev("comment", "m3", "1:00", "p1", "u6"),  # answered after its deadline
    ev("like", "L4", "1:05", "p1", "u1"),
    ev("repost", "R1", "1:10", "p1", "u5"),
    reply("r4", "2:00", "p1", parent="m4"),  # the reply arrives before the comment it answers
    ev("comment", "m4", "1:30", "p1", "u12"),
    ev("comment", "m5", "3:00", "p1", "u7"),
    ev("comment", "m6", "3:30", "p2", "u9"),  # only another subscriber answers
    ev("comment_delete", "del-m5", "4:00", "p1", "u7"),
    reply("r6", "4:00", "p2", parent="m6", by_community=False),
    reply("r2", "5:20", "p2", parent="m2"),
    reply("r3", "15:00", "p1", parent="m3"),
    ev("comment", "m7", "30:00", "p2", "u11"),
    reply("r7", "30:05", "p2", parent="m7"),
    ev("like", "L5", "29:00", "p1", "u1"),
    ev("like", "late", "0:30", "p1", "u13"),  # 28.5 minutes behind its topic: late
    reply("r1-late", "31:00", "p1", parent="m-none"),  # moves p1's comment clock past every deadline
    ev("comment", "m8", "31:00", "p2", "u14"),  # moves p2's comment clock past every deadline
]

EXPECTED_WINDOWS = {  # (post, minute) -> likes, comments, reposts, unique engagers
    ("p1", "0:00"): (3, 0, 0, 3),
    ("p1", "1:00"): (1, 2, 1, 4),
    ("p1", "2:00"): (0, 1, 0, 1),
    ("p1", "3:00"): (0, 1, 0, 1),
    ("p1", "15:00"): (0, 1, 0, 1),
    ("p1", "29:00"): (1, 0, 0, 1),
    ("p1", "31:00"): (0, 1, 0, 1),
    ("p2", "0:00"): (0, 2, 0, 2),
    ("p2", "3:00"): (0, 1, 0, 1),
    ("p2", "4:00"): (0, 1, 0, 1),
    ("p2", "5:00"): (0, 1, 0, 1),
    ("p2", "30:00"): (0, 2, 0, 2),
    ("p2", "31:00"): (0, 1, 0, 1),
}
EXPECTED_ALERTS = {
    ("m1", "at_risk"), ("m1", "unanswered_comment"),
    ("m3", "at_risk"), ("m3", "unanswered_comment"), ("m3", "resolved"),
    ("m6", "at_risk"), ("m6", "unanswered_comment"),
    ("r6", "at_risk"), ("r6", "unanswered_comment"),  # a subscriber's reply is a subscriber comment too
}  # fmt: skip
EXPECTED_SLA = {  # comment -> response seconds, breached, cancelled
    "m1": (None, True, False),
    "m2": (300.0, False, False),
    "m3": (840.0, True, False),
    "m4": (30.0, False, False),
    "m5": (None, False, True),
    "m6": (None, True, False),
    "r6": (None, True, False),
    "m7": (5.0, False, False),
    "m8": (None, False, False),
}


def publish(kafka: KafkaSettings, worker: Worker, events: list[CanonicalEvent], **settings: Any) -> None:
    with EventPublisher(kafka, PublisherSettings(**settings), worker.topics) as publisher:
        for event in events:
            publisher.publish(event)
        publisher.flush()


def prepare(kafka: KafkaSettings, prefix: str, tmp_path: Path, **processor: Any) -> Worker:
    worker = Worker(kafka, prefix, tmp_path / f"{prefix}worker.log", **processor)
    # The worker creates its topics too, but the tests publish before starting it.
    ensure_topics(kafka, TopicSettings(prefix=prefix, event_partitions=2).partitions(worker.topics), 1)
    return worker


def wait_for_more_state(kafka: KafkaSettings, worker: Worker, than: int, timeout_s: float = 120) -> int:
    """Until the worker's changelog holds more than `than` records; returns how many it holds."""
    changelog = state_changelog_topic(worker.app_id)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        worker.check_alive()
        written = next((t.messages for t in describe_topics(kafka) if t.name == changelog), 0)
        if written > than:
            return written
        time.sleep(0.2)
    raise AssertionError(f"the worker wrote no state within {timeout_s:.0f} s: {worker.log_tail()}")


def stats_since(worker: Worker, since_ms: int, timeout_s: float) -> dict[int, PartitionStats]:
    """Each partition's last counters, once both partitions emitted some at or after `since_ms`."""
    deadline = time.monotonic() + timeout_s
    while True:
        stats: dict[int, PartitionStats] = {}
        for out in worker.outputs(worker.topics.metrics):
            assert isinstance(out, PartitionStats)
            stats[out.partition] = out
        if len(stats) == 2 and all(s.emitted_at_ms >= since_ms for s in stats.values()):
            return stats
        if time.monotonic() > deadline:
            raise AssertionError(
                f"no counters of both partitions since {since_ms} within {timeout_s} s: {stats}"
            )
        worker.check_alive()
        time.sleep(0.2)


def test_known_sequence_gives_exact_windows_alerts_and_response_times(
    kafka: KafkaSettings, unique: str, tmp_path: Path
) -> None:
    worker = prepare(kafka, f"k{unique}-", tmp_path, sla_default_s=600, allowed_lateness_s=120,
                     at_risk_fraction=0.5, sla_grace_s=1)  # fmt: skip
    # One event per message, so the stream order is exactly the list's order within each partition.
    publish(kafka, worker, SEQUENCE, batch_events=1)
    worker.start()
    try:
        worker.wait_drained(timeout_s=120)
        # Counters go out on ticks only: wait for a tick of each partition after the input was processed.
        stats = stats_since(worker, time.time_ns() // 1_000_000, timeout_s=60)
    finally:
        code = worker.stop()
    assert code == 0, worker.log.read_text()[-3000:]
    assert not Path(f"{worker.app_id}-data").exists(), "the in-memory table left a data directory behind"
    windows = {}
    for out in worker.outputs(worker.topics.engagement):
        if isinstance(out, WindowValue):
            windows[(out.post_id, out.minute_ms)] = (
                out.likes,
                out.comments,
                out.reposts,
                out.unique_engagers,
            )
    assert windows == {(post, at(minute)): value for (post, minute), value in EXPECTED_WINDOWS.items()}
    alerts = [a for a in worker.outputs(worker.topics.alerts) if isinstance(a, Alert)]
    assert {(a.comment_id, a.kind.value) for a in alerts} == EXPECTED_ALERTS
    assert len(alerts) == len(EXPECTED_ALERTS), "each alert once"
    breach = next(a for a in alerts if a.alert_id == "vk:c1:m1:unanswered_comment")
    assert (breach.fired_at_ms, breach.waited_s, breach.author_id) == (at("10:10"), 600.0, "u4")
    assert next(a for a in alerts if a.kind.value == "resolved").response_s == 840.0
    sla: dict[str, SlaRecord] = {}
    for out in worker.outputs(worker.topics.comment_sla):
        assert isinstance(out, SlaRecord)
        sla[out.comment_id] = out
    assert {c: (r.response_s, r.breached, r.cancelled) for c, r in sla.items()} == EXPECTED_SLA
    assert sum(s.late_events for s in stats.values()) == 1
    assert sum(s.duplicate_events for s in stats.values()) == 1


def test_bad_lines_go_to_the_dead_letter_topic_and_the_rest_is_counted(
    kafka: KafkaSettings, unique: str, tmp_path: Path
) -> None:
    from kafka import KafkaProducer

    from schemas import DLQ_REASON, DLQ_SOURCE, encode_message
    from tests.kafka_reading import read_all

    worker = prepare(kafka, f"d{unique}-", tmp_path)
    good = encode_message([SEQUENCE[0], SEQUENCE[1]]).split(b"\n")
    value = b"\n".join([good[0], b'{"event_id": "x", "type": "like"}', b"\xff\x00 not json", good[1]])
    producer = KafkaProducer(**kafka.client_config())
    producer.send(worker.topics.likes, value=value, key=b"vk:c1:p1", partition=0).get(timeout=30)
    producer.close()
    worker.start()
    try:
        worker.wait_drained(timeout_s=120)
    finally:
        code = worker.stop()
    assert code == 0, worker.log.read_text()[-3000:]
    dead = read_all(kafka, worker.topics.dead_letters)
    assert [d.value for d in dead] == [b'{"event_id": "x", "type": "like"}', b"\xff\x00 not json"]
    assert all(d.headers[DLQ_SOURCE] == f"{worker.topics.likes}/0/0".encode() for d in dead)
    assert b"line 2" in dead[0].headers[DLQ_REASON] and b"line 3" in dead[1].headers[DLQ_REASON]
    windows = [w for w in worker.outputs(worker.topics.engagement) if isinstance(w, WindowValue)]
    assert windows[-1].likes == 2


def test_an_event_from_the_future_fires_nothing_early_and_drops_nothing_later(
    kafka: KafkaSettings, unique: str, tmp_path: Path
) -> None:
    """A producer we do not control (kafka-python, not our publisher) sends a live comment and, in the
    same message, one stamped a day ahead: the record timestamp is the first event's, so Kafka takes it.
    The worker dead-letters that line naming `ts`; the open SLA clock does not fire (its deadline is ten
    minutes away) and the later comments and likes are counted, none of them late."""
    from kafka import KafkaProducer

    from schemas import DLQ_CODE, DLQ_REASON, encode_message
    from tests.kafka_reading import read_all

    worker = prepare(kafka, f"f{unique}-", tmp_path, sla_default_s=600, at_risk_fraction=0.5)
    now = time.time_ns() // 1_000_000

    def live(kind: str, eid: str, ts: int, **fields: Any) -> CanonicalEvent:
        return validate({"event_id": eid, "type": kind, "platform": "vk", "community_id": "c1",
                         "post_id": "p1", "user_id": f"u-{eid}", "ts": ts, **fields})  # fmt: skip

    first = [live("comment", "m1", now - 5_000, comment_id="m1"),
             live("comment", "mf", now + 86_400_000, comment_id="mf")]  # fmt: skip
    later_comment = [live("comment", "m2", now - 1_000, comment_id="m2")]
    later_likes = [live("like", "l1", now - 3_000), live("like", "l2", now - 2_000)]
    producer = KafkaProducer(**kafka.client_config(), acks="all")
    for topic, events in ((worker.topics.comments, first), (worker.topics.likes, later_likes),
                          (worker.topics.comments, later_comment)):  # fmt: skip
        producer.send(topic, value=encode_message(events), key=b"vk:c1:p1").get(timeout=30)
    producer.close()
    worker.start()
    try:
        worker.wait_drained(timeout_s=120)
        stats = stats_since(worker, time.time_ns() // 1_000_000 + 1_000, timeout_s=60)  # ticks went by
    finally:
        assert worker.stop() == 0, worker.log_tail()
    (dead,) = read_all(kafka, worker.topics.dead_letters)
    assert dead.value == encode_message(first[1:]).rstrip(b"\n")
    assert dead.headers[DLQ_CODE] == b"ts_ahead_of_clock"
    assert dead.headers[DLQ_REASON].startswith(b"line 2: field 'ts': ")
    assert [a for a in worker.outputs(worker.topics.alerts)] == [], "no SLA clock fired early"
    windows: dict[int, WindowValue] = {}
    for out in worker.outputs(worker.topics.engagement):
        if isinstance(out, WindowValue):
            windows[out.minute_ms] = out
    assert all(minute <= now for minute in windows), "no window in the future"
    assert sum(w.comments for w in windows.values()) == 2 and sum(w.likes for w in windows.values()) == 2
    assert sum(s.late_events for s in stats.values()) == 0
    assert sum(s.rejected_lines for s in stats.values()) == 1


def test_input_deleted_before_it_was_processed_is_reported_and_the_rest_is_counted(
    kafka: KafkaSettings, unique: str, tmp_path: Path
) -> None:
    """Retention (here: the DeleteRecords a retention check also uses) removed messages a stopped worker
    had not reached yet: the restarted worker says which offsets are gone and counts everything after."""
    from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

    worker = prepare(kafka, f"r{unique}-", tmp_path)
    before = [ev("like", f"a{i}", "0:10", "p1", f"u{i}") for i in range(5)]
    after = [ev("like", f"b{i}", "1:10", "p1", f"v{i}") for i in range(10)]
    publish(kafka, worker, before, batch_events=1)
    worker.start()
    try:
        worker.wait_drained(timeout_s=120)
    finally:
        assert worker.stop() == 0, worker.log_tail()
    publish(kafka, worker, after, batch_events=1)  # one partition: all of p1's likes share a key
    consumer = KafkaConsumer(**kafka.client_config())
    partitions = [TopicPartition(worker.topics.likes, p) for p in (0, 1)]
    end = consumer.end_offsets(partitions)
    consumer.close()
    (tp,) = [tp for tp in partitions if end[tp] == 15]
    admin = KafkaAdminClient(**kafka.client_config())
    admin.delete_records({tp: 11})  # offsets 5 to 10 (b0 to b5) go before any worker read them
    admin.close()
    worker.start()
    try:
        worker.wait_drained(timeout_s=120)
    finally:
        assert worker.stop() == 0, worker.log_tail()
    text = worker.log.read_text()
    assert f"{tp.topic}/{tp.partition}: offsets 5 to 10 were deleted before they were processed" in text
    windows = {}
    for out in worker.outputs(worker.topics.engagement):
        if isinstance(out, WindowValue):
            windows[out.minute_ms] = (out.likes, out.unique_engagers)
    assert windows == {at("0:00"): (5, 5), at("1:00"): (4, 4)}


def simulated(events: int) -> list[CanonicalEvent]:
    sim = Simulator(SimulatorSettings(communities=4, events_per_sim_s=4.0, answer_median_s=300, seed=11))
    return list(sim.events(count=events))


def final_state(worker: Worker) -> tuple[dict[tuple[str, str, int], WindowValue], set[str], dict[str, Any]]:
    windows, alerts, sla = {}, set(), {}
    for out in worker.outputs(worker.topics.engagement, worker.topics.alerts, worker.topics.comment_sla):
        if isinstance(out, WindowValue):
            windows[(out.community_id, out.post_id, out.minute_ms)] = out
        elif isinstance(out, Alert):
            alerts.add(out.alert_id)
        elif isinstance(out, SlaRecord):
            sla[out.comment_id] = (out.answered_at_ms, out.breached, out.cancelled)
    return windows, alerts, sla


def test_kill_9_mid_run_gives_the_same_windows_and_alerts_as_an_undisturbed_run(
    kafka: KafkaSettings, unique: str, tmp_path: Path
) -> None:
    events = simulated(120_000)
    chunks = [events[i : i + 6_000] for i in range(0, len(events), 6_000)]
    settings = {"sla_default_s": 900, "allowed_lateness_s": 120}

    calm = prepare(kafka, f"u{unique}-", tmp_path, **settings)
    publish(kafka, calm, events)
    calm.start()
    try:
        calm.wait_drained(timeout_s=120)
    finally:
        calm.stop()
    expected = final_state(calm)
    assert len(expected[0]) > 1_000 and len(expected[1]) > 50

    crashed = prepare(kafka, f"c{unique}-", tmp_path, **settings)
    crashed.start()
    kills, written = 0, 0
    for i, chunk in enumerate(chunks):
        publish(kafka, crashed, chunk)
        time.sleep(0.3)
        if i in (6, 13):
            # Only once this start has persisted state: on a loaded machine a worker may still be starting
            # after a fixed delay, and a kill before its first batch tests nothing (seen under load).
            written = wait_for_more_state(kafka, crashed, than=written)
            crashed.kill()  # kill -9 while it processes
            kills += 1
            crashed.start()
    try:
        crashed.wait_drained(timeout_s=120)
    finally:
        crashed.stop()
    assert kills == 2 and "resumed with 0 state entries" in crashed.log.read_text()
    resumed = [line for line in crashed.log.read_text().splitlines() if "resumed with" in line]
    assert any("resumed with 0 " not in line for line in resumed), "the restarted worker took state back"
    got = final_state(crashed)
    assert got[0] == expected[0]
    assert got[1] == expected[1]
    assert got[2] == expected[2]


def test_a_changelog_ending_in_a_transaction_marker_is_restored_and_the_worker_goes_on(
    kafka: KafkaSettings, unique: str, tmp_path: Path
) -> None:
    """faust's own recovery waits for ever on a changelog that ends in a transaction marker (an offset no
    consumer is ever given); the worker restores its state in bulk instead (faust_fixes.state_table),
    reading to the partition's end, markers included: it comes up, and counts on from the restored state."""
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    from schemas.outputs import WindowValue

    worker = prepare(kafka, f"rs{unique}-", tmp_path, recovery_stall_s=10)
    publish(kafka, worker, [ev("like", f"a{i}", "0:10", "p1", f"u{i}") for i in range(3)])
    worker.start()
    try:
        worker.wait_drained(timeout_s=120)
    finally:
        assert worker.stop() == 0, worker.log_tail()

    changelog = state_changelog_topic(worker.app_id)
    consumer = KafkaConsumer(**kafka.client_config(), enable_auto_commit=False)
    partitions = [TopicPartition(changelog, p) for p in (0, 1)]
    ends = consumer.end_offsets(partitions)
    tp = next(tp for tp in partitions if ends[tp] > 0)
    consumer.assign([tp])
    consumer.seek(tp, ends[tp] - 1)
    (last,) = consumer.poll(timeout_ms=10_000)[tp][-1:]
    consumer.close()
    producer = KafkaProducer(**kafka.client_config(), transactional_id=f"t{unique}")
    producer.init_transactions()
    producer.begin_transaction()
    producer.send(changelog, key=last.key, value=last.value, partition=tp.partition)  # the same state again
    producer.commit_transaction()
    producer.close()

    publish(kafka, worker, [ev("like", f"b{i}", "0:20", "p1", f"v{i}") for i in range(2)])
    worker.start()
    try:
        worker.wait_drained(timeout_s=90)
    finally:
        assert worker.stop() == 0, worker.log_tail()
    assert "in bulk" in worker.log.read_text(), worker.log_tail()
    windows = [w for w in worker.outputs(worker.topics.engagement) if isinstance(w, WindowValue)]
    assert max(w.likes for w in windows if w.post_id == "p1") == 5, "3 restored, 2 more"
