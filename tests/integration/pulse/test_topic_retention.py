"""The topics that carry personal data are kept for a time counted from each record's arrival."""

from __future__ import annotations

import time

from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import ConfigResource, ConfigResourceType

from pulse.topics import TopicSettings, ensure_topics
from schemas import KafkaSettings
from tests.kafka_reading import read_all


def test_personal_topics_keep_records_a_time_from_arrival_the_others_by_size(
    kafka: KafkaSettings, unique: str
) -> None:
    settings = TopicSettings(prefix=f"r{unique}-", retention_h=24)
    topics = settings.names
    ensure_topics(
        kafka, settings.partitions(topics), 1, settings.retention_bytes, settings.retention_ms(topics)
    )
    admin = KafkaAdminClient(**kafka.client_config())
    try:
        resources = [ConfigResource(ConfigResourceType.TOPIC, name) for name in topics.all]
        described = admin.describe_configs(resources)
    finally:
        admin.close()
    configs = {name: {key: entry["value"] for key, entry in found.items()}
               for name, found in described["topic"].items()}  # fmt: skip
    personal = {topics.likes, topics.comments, topics.reposts, topics.posts, topics.followers, topics.alerts,
                topics.comment_sla, topics.dead_letters}  # fmt: skip
    for name in topics.all:
        expected = ("86400000", "LogAppendTime") if name in personal else ("-1", "CreateTime")
        got = (configs[name]["retention.ms"], configs[name].get("message.timestamp.type", "CreateTime"))
        assert got == expected, name

    # A record stamped with last year's event time is kept: the broker counts from its arrival.
    year_ago_ms = time.time_ns() // 1_000_000 - 365 * 86_400_000
    producer = KafkaProducer(**kafka.client_config())
    producer.send(topics.likes, value=b"{}", timestamp_ms=year_ago_ms, partition=0).get(timeout=30)
    producer.close()
    (record,) = read_all(kafka, topics.likes)
    assert record.timestamp > time.time_ns() // 1_000_000 - 60_000, "stamped on arrival"
