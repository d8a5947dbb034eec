"""The ClickHouse sink on the real broker and the embedded engine: batches, offsets, retries, bad rows."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest
from clickhouse_connect.driver.exceptions import OperationalError
from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import RebalanceInProgressError

from agents import EventPublisher, PublisherSettings, Simulator, SimulatorSettings
from pipeline.errors import SinkStopped
from pipeline.warehouse import ClickHouseSettings, apply_migrations, connect
from pipeline.warehouse.routes import events_spec
from pipeline.warehouse.table_sink import Lines, SinkSettings, TableSink, TableSpec
from pulse.topics import ensure_topics
from schemas import CANONICAL_HEADERS, DLQ_CODE, KafkaSettings, Topics, encode_events
from tests.kafka_reading import read_all


class Unreachable:
    """The real engine behind a switch: while `down`, every insert fails as a refused connection would."""

    def __init__(self, client: Any, failures: int) -> None:
        self.client = client
        self.failures_left = failures
        self.attempts = 0

    def raw_insert(self, *args: Any, **kwargs: Any) -> Any:
        self.attempts += 1
        if self.failures_left > 0:
            self.failures_left -= 1
            raise OperationalError("Error HTTPConnectionPool(host='ch', port=8123): Connection refused")
        return self.client.raw_insert(*args, **kwargs)


@pytest.fixture
def topics(kafka: KafkaSettings, unique: str) -> Topics:
    names = Topics.prefixed(f"k{unique}-")
    ensure_topics(kafka, dict.fromkeys(names.all, 2), 1)
    return names


def produce_events(kafka: KafkaSettings, topics: Topics, count: int) -> list[str]:
    events = list(Simulator(SimulatorSettings(communities=2, seed=9)).events(count=count))
    with EventPublisher(kafka, PublisherSettings(batch_events=40), topics) as publisher:
        for event in events:
            publisher.publish(event)
    return sorted(e.event_id for e in events)


def consumer_for(kafka: KafkaSettings, topics: Topics, group: str, *names: str) -> KafkaConsumer:
    """A sink's consumer in `group`, on the topics `names` (the event topics if none)."""
    consumer = KafkaConsumer(
        *(names or topics.event_topics), **kafka.client_config(), group_id=group, enable_auto_commit=False,
        auto_offset_reset="earliest",
    )  # fmt: skip
    return consumer


def stored_ids(client: Any) -> list[str]:
    return [row[0] for row in client.query("SELECT event_id FROM events FINAL ORDER BY event_id").result_rows]


def drain(sink: TableSink, timeout_s: float = 60.0) -> None:
    """Polls until the consumer has joined, been assigned, and read to the end of every partition."""
    consumer = sink.consumer
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        sink.poll_once(200)
        assigned = consumer.assignment()
        if assigned:
            ends = consumer.end_offsets(list(assigned))
            if all(consumer.position(tp) >= ends[tp] for tp in assigned):
                break
    else:
        raise AssertionError("the sink did not reach the end of its partitions in time")
    sink.flush()


def test_events_land_once_and_offsets_follow_inserts(
    kafka: KafkaSettings, topics: Topics, clickhouse: ClickHouseSettings, unique: str
) -> None:
    expected = produce_events(kafka, topics, 2000)
    client = connect(clickhouse)
    apply_migrations(client)
    dead: list[Any] = []
    consumer = consumer_for(kafka, topics, f"sink-{unique}")
    sink = TableSink(events_spec(), consumer, client, lambda *a: dead.append(a), SinkSettings(batch_rows=500))
    drain(sink)
    consumer.close()
    assert stored_ids(client) == expected
    assert client.query("SELECT count() FROM events").result_rows == [(2000,)]
    assert dead == [] and sink.stats.batches >= 4

    # A restarted sink in the same group finds nothing new: the offsets were committed after the inserts.
    again = consumer_for(kafka, topics, f"sink-{unique}")
    second = TableSink(events_spec(), again, client, lambda *a: dead.append(a))
    drain(second)
    again.close()
    assert second.stats.rows_written == 0


def test_crash_before_commit_replays_without_doubling(
    kafka: KafkaSettings, topics: Topics, clickhouse: ClickHouseSettings, unique: str
) -> None:
    expected = produce_events(kafka, topics, 600)
    client = connect(clickhouse)
    apply_migrations(client)
    # First run inserts every batch but "crashes" before committing: no commit reaches Kafka.
    consumer = consumer_for(kafka, topics, f"crash-{unique}")
    sink = TableSink(events_spec(), consumer, client, lambda *a: None, SinkSettings(batch_rows=10_000))
    sink.consumer.commit = lambda *a, **k: None  # type: ignore[method-assign]
    drain(sink)
    consumer.close()
    # The restart replays everything from the last commit.
    consumer = consumer_for(kafka, topics, f"crash-{unique}")
    replayed = TableSink(events_spec(), consumer, client, lambda *a: None, SinkSettings(batch_rows=10_000))
    drain(replayed)
    consumer.close()
    assert replayed.stats.rows_written == 600
    assert stored_ids(client) == expected, "FINAL shows each event once"


def test_a_commit_refused_by_a_rebalance_does_not_stop_the_sink(
    kafka: KafkaSettings, topics: Topics, clickhouse: ClickHouseSettings, unique: str
) -> None:
    """Seen in CI: the group rebalanced at start-up and the loader's first commit raised. The rows are
    stored and a later flush commits past them."""
    expected = produce_events(kafka, topics, 1000)
    client = connect(clickhouse)
    apply_migrations(client)
    consumer = consumer_for(kafka, topics, f"rebalanced-{unique}")
    commit, refused, timeouts = consumer.commit, [], []

    def commit_once_refused(*args: Any, **kwargs: Any) -> Any:
        timeouts.append(kwargs.get("timeout_ms"))
        if not refused:
            refused.append(args)
            raise RebalanceInProgressError(
                "Offset commit cannot be completed since the consumer is rebalancing"
            )
        return commit(*args, **kwargs)

    consumer.commit = commit_once_refused  # type: ignore[method-assign]
    sink = TableSink(events_spec(), consumer, client, lambda *a: None, SinkSettings(batch_rows=300))
    drain(sink)
    consumer.close()
    assert sink.stats.commit_failures == 1 and refused
    assert timeouts and set(timeouts) == {10_000}, "no commit may block the loader for kafka-python's 305 s"
    assert stored_ids(client) == expected
    again = consumer_for(kafka, topics, f"rebalanced-{unique}")
    second = TableSink(events_spec(), again, client, lambda *a: None)
    drain(second)
    again.close()
    assert second.stats.rows_written == 0, "the later commits covered the batch whose commit was refused"


def test_unreachable_target_is_retried_with_the_same_batch(
    kafka: KafkaSettings, topics: Topics, clickhouse: ClickHouseSettings, unique: str
) -> None:
    expected = produce_events(kafka, topics, 300)
    real = connect(clickhouse)
    apply_migrations(real)
    flaky = Unreachable(real, failures=4)
    waits: list[float] = []
    consumer = consumer_for(kafka, topics, f"flaky-{unique}")
    sink = TableSink(
        events_spec(), consumer, flaky, lambda *a: None, SinkSettings(batch_rows=10_000), sleep=waits.append
    )
    drain(sink)
    consumer.close()
    assert sink.stats.retries == 4
    assert sum(waits) == 0.5 + 1.0 + 2.0 + 4.0, "exponential backoff while the target is away"
    assert max(waits) <= 0.5, "waited in short steps, so a stop is noticed"
    assert stored_ids(real) == expected
    assert real.query("SELECT count() FROM events").result_rows == [(300,)], "nothing doubled"


def test_a_stop_during_an_outage_commits_nothing(
    kafka: KafkaSettings, topics: Topics, clickhouse: ClickHouseSettings, unique: str
) -> None:
    produce_events(kafka, topics, 200)
    real = connect(clickhouse)
    apply_migrations(real)
    waits: list[float] = []
    consumer = consumer_for(kafka, topics, f"stop-{unique}")
    sink = TableSink(
        events_spec(), consumer, Unreachable(real, failures=1_000), lambda *a: None, SinkSettings(batch_rows=50),
        sleep=waits.append, should_stop=lambda: len(waits) >= 6,
    )  # fmt: skip
    with pytest.raises(SinkStopped):
        drain(sink)
    assert consumer.committed(next(iter(consumer.assignment()))) is None, "nothing committed"
    consumer.close()
    assert real.query("SELECT count() FROM events").result_rows == [(0,)]


def test_rows_the_server_rejects_are_dead_lettered_and_the_rest_stored(
    kafka: KafkaSettings, topics: Topics, clickhouse: ClickHouseSettings, unique: str
) -> None:
    client = connect(clickhouse)
    client.command(
        "CREATE TABLE IF NOT EXISTS scores (name String, score UInt32, CONSTRAINT sane CHECK score <= 100) "
        "ENGINE = MergeTree ORDER BY name"
    )
    topic = topics.alerts
    producer = KafkaProducer(**kafka.client_config())
    values = [b"ann,3", b"bob,999999", b"cid,7", b"dan,oops", b"eve,9"]
    for value in values:
        producer.send(topic, value=value)
    producer.flush()
    producer.close()

    def lines_of(value: bytes) -> Lines:
        name, score = value.decode().split(",")
        return Lines(1, orjson.dumps({"name": name, "score": score}) + b"\n")

    dead: list[tuple[bytes, Any, list[tuple[str, bytes]]]] = []
    consumer = KafkaConsumer(
        topic,
        **kafka.client_config(),
        group_id=f"bad-{unique}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    sink = TableSink(TableSpec("scores", lines_of), consumer, client, lambda *a: dead.append(a))
    drain(sink)
    consumer.close()
    assert sorted(r[0] for r in client.query("SELECT name FROM scores").result_rows) == ["ann", "cid", "eve"]
    assert sorted(d[0] for d in dead) == [b"bob,999999", b"dan,oops"]
    assert all(dict(d[2])[DLQ_CODE] == b"sink_rejected" for d in dead)
    assert read_all(kafka, topics.dead_letters) == []  # the callback decides where dead letters go


def test_values_marked_canonical_are_stored_as_they_came_and_others_are_checked(
    kafka: KafkaSettings, topics: Topics, clickhouse: ClickHouseSettings, unique: str
) -> None:
    """A marked value is the same rows the decode-and-encode path would make, without the work; so the
    mark is a promise the sink keeps: a line the contract forbids (text on a like) is stored when marked,
    and dropped (left to the processors to dead-letter) when not."""
    events = list(Simulator(SimulatorSettings(communities=2, seed=4)).events(count=400))
    forbidden = (
        b'{"event_id":"text-on-a-like","type":"like","platform":"vk","community_id":"c","post_id":"p",'
    )
    forbidden += b'"user_id":"u","ts":1795446245250,"text":"not allowed here"}\n'
    producer = KafkaProducer(**kafka.client_config())
    for start in range(0, 400, 50):
        value = encode_events(events[start : start + 50])
        producer.send(topics.likes, value=value, headers=CANONICAL_HEADERS)  # marked
        producer.send(topics.comments, value=value)  # the same bytes, unmarked
    producer.send(topics.likes, value=forbidden, headers=CANONICAL_HEADERS)
    producer.send(topics.comments, value=forbidden)
    producer.flush()
    producer.close()
    client = connect(clickhouse)
    apply_migrations(client)
    columns = "event_id, type, platform, community_id, post_id, user_id, ts, comment_id, parent_id, "
    columns += "by_community, text, age_band, gender, country"

    def rows_from(topic: str) -> list[tuple[Any, ...]]:
        client.command("TRUNCATE TABLE events")
        consumer = consumer_for(kafka, topics, f"{topic}-{unique}", topic)
        sink = TableSink(events_spec(), consumer, client, lambda *a: None)
        drain(sink)
        consumer.close()
        assert sink.stats.dead_letters == 0
        return list(client.query(f"SELECT {columns} FROM events ORDER BY event_id").result_rows)

    marked, checked = rows_from(topics.likes), rows_from(topics.comments)
    assert len(marked) == 401 and len(checked) == 400
    assert [r for r in marked if r[0] != "text-on-a-like"] == checked
    assert sorted(r[0] for r in checked) == sorted(e.event_id for e in events)


def test_a_quiet_input_is_inserted_after_half_the_flush_interval(
    kafka: KafkaSettings, topics: Topics, clickhouse: ClickHouseSettings, unique: str
) -> None:
    expected = produce_events(kafka, topics, 120)
    client = connect(clickhouse)
    apply_migrations(client)
    now = [0.0]
    consumer = consumer_for(kafka, topics, f"quiet-{unique}")
    sink = TableSink(
        events_spec(), consumer, client, lambda *a: None, SinkSettings(flush_interval_s=10),
        clock=lambda: now[0],
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while sink.pending_rows < 120 and time.monotonic() < deadline:
        sink.poll_once(200)  # its own clock stands still: never due
    assert sink.pending_rows == 120

    now[0] = 4.9
    sink.flush_if_due(quiet=True)
    assert sink.stats.batches == 0, "an insert less than half an interval after the last one"
    now[0] = 5.0
    sink.flush_if_due(quiet=True)
    assert sink.stats.batches == 1 and sink.pending_rows == 0
    assert stored_ids(client) == expected
    now[0] = 9.0
    sink.flush_if_due(quiet=True)  # nothing pending: no insert, and no commit either
    assert sink.stats.batches == 1
    consumer.close()


def test_an_event_stamped_ahead_of_the_clock_by_another_producer_is_not_stored(
    kafka: KafkaSettings, topics: Topics, clickhouse: ClickHouseSettings, unique: str
) -> None:
    from schemas import validate
    from tests.events import wire

    now = time.time_ns() // 1_000_000
    events = [
        validate(wire("like", event_id="now", ts=now)),
        validate(wire("like", event_id="later", ts=now + 86_400_000)),
    ]
    producer = KafkaProducer(**kafka.client_config())  # not our publisher: no canonical mark
    producer.send(topics.likes, value=encode_events(events), partition=0).get(timeout=30)
    producer.close()
    client = connect(clickhouse)
    apply_migrations(client)
    consumer = consumer_for(kafka, topics, f"ahead-{unique}", topics.likes)
    drain(TableSink(events_spec(), consumer, client, lambda *a: None))
    consumer.close()
    assert stored_ids(client) == ["now"], "the processors dead-letter it; the table does not keep it either"
