"""Canonical events through the real broker: keyed by post, timestamped by event time, NDJSON batches,
read back by a consumer in another process."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from kafka import KafkaProducer

from pulse.topics import describe_topics, ensure_topics
from schemas import KafkaSettings, decode_message, encode_message, validate
from tests.events import BASE_TS_MS, wire

CONSUMER = textwrap.dedent(
    """
    import json, sys
    from kafka import KafkaConsumer
    bootstrap, topic, group, expected = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group,
                             auto_offset_reset="earliest", consumer_timeout_ms=30000)
    seen = 0
    for record in consumer:
        print(json.dumps({"partition": record.partition, "key": record.key.decode(),
                          "timestamp": record.timestamp, "value": record.value.decode()}), flush=True)
        seen += record.value.count(b"\\n")
        if seen >= expected:
            break
    consumer.close()
    """
)


def test_batched_events_reach_a_consumer_in_another_process(kafka: KafkaSettings, unique: str) -> None:
    topic = f"likes-{unique}"
    assert ensure_topics(kafka, {topic: 3}, 1) == [topic]
    posts = {f"p{n}": [validate(wire("like", post_id=f"p{n}", event_id=f"p{n}-e{i}", ts=BASE_TS_MS + 1000 * i))
                       for i in range(5)] for n in range(4)}  # fmt: skip
    producer = KafkaProducer(**kafka.client_config(), acks="all")
    futures = [
        producer.send(
            topic, key=events[0].post_key.encode(), value=encode_message(events), timestamp_ms=events[0].ts_ms
        )
        for events in posts.values()
    ]
    producer.flush()
    metadata = [f.get(timeout=30) for f in futures]
    producer.close()
    assert all(m.topic == topic for m in metadata)

    result = subprocess.run(
        [sys.executable, "-c", CONSUMER, kafka.bootstrap_servers, topic, f"g-{unique}", "20"],
        capture_output=True, text=True, timeout=90, check=True,
    )  # fmt: skip
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 4
    by_key = {r["key"]: r for r in records}
    assert set(by_key) == {f"vk:c1:p{n}" for n in range(4)}
    for n, events in enumerate(posts.values()):
        record = by_key[f"vk:c1:p{n}"]
        assert record["timestamp"] == events[0].ts_ms
        assert list(decode_message(record["value"].encode())) == events


def test_same_post_key_lands_on_one_partition_in_order(kafka: KafkaSettings, unique: str) -> None:
    topic = f"comments-{unique}"
    ensure_topics(kafka, {topic: 4}, 1)
    producer = KafkaProducer(**kafka.client_config(), acks="all")
    events = [
        validate(wire("comment", event_id=f"e{i}", comment_id=f"m{i}", ts=BASE_TS_MS + i)) for i in range(30)
    ]
    sent = [
        producer.send(topic, key=e.post_key.encode(), value=encode_message([e]), timestamp_ms=e.ts_ms)
        for e in events
    ]
    producer.flush()
    placed = [f.get(timeout=30) for f in sent]
    producer.close()
    assert len({m.partition for m in placed}) == 1
    assert [m.offset for m in placed] == sorted(m.offset for m in placed)


def test_topics_are_created_once_with_requested_partitions(kafka: KafkaSettings, unique: str) -> None:
    wanted = {f"a-{unique}": 2, f"b-{unique}": 5}
    assert sorted(ensure_topics(kafka, wanted, 1)) == sorted(wanted)
    assert ensure_topics(kafka, wanted, 1) == []
    described = {t.name: t.partitions for t in describe_topics(kafka)}
    assert {name: described[name] for name in wanted} == wanted
