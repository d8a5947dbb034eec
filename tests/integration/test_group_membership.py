"""The join kafka-python strands, on the real broker: the fault is forced the way it happens (a metadata
snapshot that differs for one poll, then matches again, while the join is still in flight), its effect is
checked (refused commits), then the repair (`rejoin_if_stranded`) is checked to bring the consumer back
to committing, and to leave a join in flight alone."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from kafka import KafkaConsumer, OffsetAndMetadata, TopicPartition
from kafka.coordinator.base import MemberState
from kafka.errors import RebalanceInProgressError

from pipeline.kafka_clients import known_partitions, rejoin_if_stranded
from pulse.topics import ensure_topics
from schemas import KafkaSettings


def subscribed(kafka: KafkaSettings, topic: str, group: str) -> KafkaConsumer:
    # A heartbeat every half second: a member learns of the other's join (and rejoins) that soon, not after
    # the default 3 s. Seen once under load in CI: the first join of two members took over 30 s.
    consumer = KafkaConsumer(
        **kafka.client_config(), group_id=group, enable_auto_commit=False, heartbeat_interval_ms=500
    )
    assert known_partitions(consumer, topic, 30)
    consumer.subscribe([topic])
    return consumer


def poll_until(consumers: list[KafkaConsumer], done: Callable[[], bool], failure: str) -> None:
    deadline = time.monotonic() + 90
    while not done():
        assert time.monotonic() < deadline, failure
        for consumer in consumers:
            consumer.poll(timeout_ms=100)


def state(consumer: KafkaConsumer) -> MemberState:
    return consumer._coordinator.state


def test_a_stranded_join_is_rejoined_and_commits_go_through_again(kafka: KafkaSettings, unique: str) -> None:
    """The broker holds the leader's join open while `other` (a member that does not poll) has not
    rejoined: while the metadata still differs, the join is in flight and the next poll awaits it; once
    it matches again, the join is stranded."""
    topic, group = f"stranded-{unique}", f"g-{unique}"
    ensure_topics(kafka, {topic: 3}, 1)
    leader, other = subscribed(kafka, topic, group), subscribed(kafka, topic, group)
    coordinator = leader._coordinator
    offsets = {TopicPartition(topic, 0): OffsetAndMetadata(0, "", -1)}
    try:
        poll_until([leader], lambda: len(leader.assignment()) == 3, "the leader never joined")
        poll_until([other, leader], lambda: len(leader.assignment()) < 3 and bool(other.assignment()),
                   "the two members never shared the topic")  # fmt: skip
        assert coordinator._assignment_snapshot is not None, "the first to join leads"
        assert not rejoin_if_stranded(leader), "a stable member needs no repair"

        # kafka-python rejoins while the metadata it assigned from differs from the latest; the latest is
        # what a metadata response replaces, so the difference is made on the other side, and held
        real = coordinator._assignment_snapshot
        coordinator._assignment_snapshot = {topic: {0, 1}}
        for _ in range(3):
            leader.poll(timeout_ms=100)
        assert state(leader) is MemberState.REBALANCING and coordinator.need_rejoin()
        assert not rejoin_if_stranded(leader), "a join the next poll awaits is not a stranded one"

        coordinator._assignment_snapshot = real  # no difference any more: kafka-python drops the join
        for _ in range(3):
            leader.poll(timeout_ms=100)
        assert state(leader) is MemberState.REBALANCING and not coordinator.need_rejoin(), (
            "kafka-python no longer strands the join: pipeline.kafka_clients may be unneeded"
        )
        with pytest.raises(RebalanceInProgressError):
            leader.commit(offsets)

        assert rejoin_if_stranded(leader)
        other.close(autocommit=False)  # its leaving lets the broker answer the join
        poll_until([leader], lambda: state(leader) is MemberState.STABLE, "the repair did not rejoin")
        poll_until([leader], lambda: len(leader.assignment()) == 3, "the leader never took the topic back")
        leader.commit(offsets)
        assert leader.committed(TopicPartition(topic, 0)) == 0
        assert not rejoin_if_stranded(leader)
    finally:
        leader.close(autocommit=False)
        other.close(autocommit=False)
