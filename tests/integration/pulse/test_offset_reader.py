"""Reading a group's lag and commits again and again over the same clients, on the real broker: the end of
every `--exit-when-done` run and of every bench run is found this way."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

from pulse.errors import TopicError
from pulse.topics import OffsetReader, ensure_topics, topic_partitions, wait_committed
from schemas import KafkaSettings

T = TypeVar("T")


def _send(kafka: KafkaSettings, topic: str, partition: int, count: int) -> None:
    producer = KafkaProducer(**kafka.client_config(), acks="all")
    try:
        for i in range(count):
            producer.send(topic, value=b"%d" % i, partition=partition)
        producer.flush(timeout=30)
    finally:
        producer.close()


def _commit(kafka: KafkaSettings, group: str, offsets: dict[TopicPartition, int]) -> None:
    consumer = KafkaConsumer(**kafka.client_config(), group_id=group, enable_auto_commit=False)
    try:
        consumer.commit({tp: OffsetAndMetadata(offset, "", -1) for tp, offset in offsets.items()})
    finally:
        consumer.close(autocommit=False)


def _first_read(read: Callable[[], T]) -> T:
    """A broker just started answers CoordinatorNotAvailable until its offsets topic is up."""
    deadline = time.monotonic() + 30
    while True:
        try:
            return read()
        except TopicError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_one_reader_follows_commits_and_a_topic_created_after_its_first_read(
    kafka: KafkaSettings, unique: str
) -> None:
    first, later, group = f"lag-a-{unique}", f"lag-b-{unique}", f"g-{unique}"
    ensure_topics(kafka, {first: 2}, 1)
    _send(kafka, first, 0, 5)
    _send(kafka, first, 1, 3)
    with OffsetReader(kafka) as reader:
        # never committed: all of it
        assert _first_read(lambda: reader.lag(group, [first, later])) == {first: 8, later: 0}
        assert reader.committed(group, [TopicPartition(first, 0)]) == {TopicPartition(first, 0): -1}

        _commit(kafka, group, {TopicPartition(first, 0): 4, TopicPartition(first, 1): 3})
        assert reader.lag(group, [first, later]) == {first: 1, later: 0}
        assert reader.committed(group, [TopicPartition(first, 0), TopicPartition(first, 1)]) == {
            TopicPartition(first, 0): 4,
            TopicPartition(first, 1): 3,
        }

        # Its partitions were looked up while `later` did not exist: they are looked up again now it does.
        ensure_topics(kafka, {later: 1}, 1)
        _send(kafka, later, 0, 2)
        _send(kafka, first, 1, 1)
        assert reader.lag(group, [first, later]) == {first: 2, later: 2}


def test_the_wait_returns_once_the_last_message_is_committed(kafka: KafkaSettings, unique: str) -> None:
    topic, group = f"lag-w-{unique}", f"g-{unique}"
    ensure_topics(kafka, {topic: 1}, 1)
    _send(kafka, topic, 0, 3)
    _commit(kafka, group, {TopicPartition(topic, 0): 2})
    checks = []

    def commit_the_last_on_the_third_check() -> None:
        checks.append(1)
        if len(checks) == 3:
            _commit(kafka, group, {TopicPartition(topic, 0): 3})

    wait_committed(kafka, group, [topic], 30, "the test", commit_the_last_on_the_third_check)
    assert len(checks) == 3  # not before the commit, and not long after it


def test_partitions_of_the_named_topics_that_exist_in_the_order_asked(
    kafka: KafkaSettings, unique: str
) -> None:
    """Looked up by describing these topics only (not by a consumer, which loads every topic's metadata)."""
    three, one, missing = f"parts-a-{unique}", f"parts-b-{unique}", f"parts-none-{unique}"
    ensure_topics(kafka, {three: 3, one: 1}, 1)
    expected = [TopicPartition(one, 0), *(TopicPartition(three, p) for p in range(3))]
    assert topic_partitions(kafka, [one, missing, three, one]) == expected
    with OffsetReader(kafka) as reader:
        assert reader.partitions([one, missing, three]) == expected
        assert reader.partitions([missing]) == []
