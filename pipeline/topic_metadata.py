"""Waiting for a topic's partitions to appear in a kafka-python client's metadata.

A topic created a moment ago may not be in a client's metadata yet. A group leader that assigns before it
is assigns nothing for that topic, and notices only at the next metadata refresh (five minutes by
default): seen as a loader that sat for minutes with nothing to read. So a long-lived consumer subscribes
only once its topics' partitions are known.
"""

from __future__ import annotations

import time

from kafka import KafkaConsumer


def known_partitions(consumer: KafkaConsumer, topic: str, timeout_s: float) -> set[int]:
    """The topic's partitions once the client's metadata has them; empty if it still has none after
    `timeout_s` (the topic does not exist, or has no partitions)."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = consumer.partitions_for_topic(topic)
        if found:
            return set(found)
        if time.monotonic() > deadline:
            return set()
        consumer.topics()  # refreshes the metadata
        time.sleep(0.1)
