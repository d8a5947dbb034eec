"""Compressed batches through the real broker, read by both Kafka clients the pipeline uses: kafka-python
(the loader) and aiokafka (faust's, in the stream workers). Whoever produces to our topics chooses the codec;
a batch a client cannot decompress stops that client at every restart (seen with lz4 in a stream worker)."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition as AioTopicPartition
from kafka import KafkaConsumer, TopicPartition

from agents.publisher import EventPublisher, PublisherSettings
from pulse.topics import ensure_topics
from schemas import CanonicalEvent, KafkaSettings, Topics, decode_events, validate
from tests.events import BASE_TS_MS, wire

CODECS = ["gzip", "lz4", "zstd", "snappy"]


def _publish(kafka: KafkaSettings, topics: Topics, codec: str) -> list[CanonicalEvent]:
    ensure_topics(kafka, {topics.likes: 1, topics.dead_letters: 1}, 1)
    events = [validate(wire("like", event_id=f"e{i}", user_id=f"u{i}", ts=BASE_TS_MS + i)) for i in range(50)]
    settings = PublisherSettings.model_validate({"compression": codec})
    with EventPublisher(kafka, settings, topics) as publisher:
        for event in events:
            publisher.publish(event)
    return events


def _events(values: list[bytes]) -> list[CanonicalEvent]:
    return [event for value in values for event in decode_events(value)[0]]


async def _read_with_aiokafka(kafka: KafkaSettings, topic: str) -> list[bytes]:
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap_servers, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = AioTopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end = (await consumer.end_offsets([tp]))[tp]
        values: list[bytes] = []
        while await consumer.position(tp) < end:
            for records in (await consumer.getmany(tp, timeout_ms=1000)).values():
                values += [r.value for r in records if r.value is not None]
        return values
    finally:
        await consumer.stop()


def _read_with_kafka_python(kafka: KafkaSettings, topic: str) -> list[bytes]:
    consumer = KafkaConsumer(**kafka.client_config(), enable_auto_commit=False)
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        end = consumer.end_offsets([tp])[tp]
        values: list[bytes] = []
        while consumer.position(tp) < end:
            for records in consumer.poll(timeout_ms=1000).values():
                values += [r.value for r in records]
        return values
    finally:
        consumer.close()


@pytest.mark.parametrize("codec", CODECS)
def test_both_clients_read_what_a_publisher_compressed(kafka: KafkaSettings, unique: str, codec: str) -> None:
    topics = Topics.prefixed(f"{codec}-{unique}-")
    sent = _publish(kafka, topics, codec)
    assert _events(asyncio.run(_read_with_aiokafka(kafka, topics.likes))) == sent
    assert _events(_read_with_kafka_python(kafka, topics.likes)) == sent
