"""Events to Kafka from an asyncio loop, acknowledged before `send` returns: the webhook receiver's producer.

The receiver answers a platform only once Kafka has the events. With kafka-python (`EventPublisher`) each
produce round went from the event loop to a worker thread, then to kafka-python's own I/O thread and
back, through locks and condition variables: measured, about a fifth of the receiver's CPU at 4,000
callbacks/s. aiokafka (faust's client, already a dependency) produces from the loop itself. Messages are
routed and encoded exactly as `EventPublisher.send_now` does: to the topic of the event's type, the
partition of its post key (murmur2, as Kafka's clients), NDJSON values marked canonical, the record
timestamp the first event's time; idempotent with acks=all, sent without lingering.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from agents.errors import KafkaUnavailable
from agents.publisher import PublisherSettings
from schemas import CANONICAL_HEADERS, CanonicalEvent, KafkaSettings, Topics, encode_events
from schemas.wire import partition_of


class AsyncEventSender:
    def __init__(
        self, kafka: KafkaSettings, settings: PublisherSettings | None = None, topics: Topics | None = None
    ) -> None:
        self.kafka = kafka
        self.settings = settings or PublisherSettings()
        self.topics = topics or Topics()
        self.events = 0
        self.messages = 0
        self._producer: AIOKafkaProducer | None = None
        self._partitions: dict[str, int] = {}
        self._enqueueing = asyncio.Lock()

    async def start(self) -> None:
        compression = None if self.settings.compression == "none" else self.settings.compression
        producer = AIOKafkaProducer(
            **self.kafka.aiokafka_config(),
            acks="all",
            enable_idempotence=True,
            linger_ms=0,
            max_batch_size=1024 * 1024,
            max_request_size=1024 * 1024,
            compression_type=compression,
            request_timeout_ms=min(
                self.kafka.request_timeout_ms, int(self.settings.delivery_timeout_s * 1000)
            ),
        )
        try:
            await producer.start()
        except (KafkaError, OSError) as exc:
            await producer.stop()
            raise KafkaUnavailable(f"cannot reach Kafka at {self.kafka.bootstrap_servers}: {exc}") from exc
        self._producer = producer

    async def stop(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await producer.stop()

    async def probe(self) -> None:
        """Raises `KafkaUnavailable` unless the cluster answers a metadata request for our topics."""
        await self._count_partitions(self.topics.dead_letters)

    async def send(self, events: Sequence[CanonicalEvent]) -> None:
        """Sends `events` and returns once Kafka acknowledged every one; `KafkaUnavailable` otherwise.
        Calls that overlap enqueue in the order they were made, so a partition's records stay in order."""
        producer = self._require()
        sent = []
        try:
            async with self._enqueueing:
                grouped: dict[tuple[str, int], list[CanonicalEvent]] = {}
                for event in events:
                    topic = self.topics.for_type(event.type)
                    count = self._partitions.get(topic) or await self._count_partitions(topic)
                    grouped.setdefault((topic, partition_of(event.post_key.encode(), count)), []).append(
                        event
                    )
                for (topic, partition), group in grouped.items():
                    keys = {e.post_key for e in group}
                    value, key = encode_events(group), keys.pop().encode() if len(keys) == 1 else None
                    sent.append(
                        await producer.send(
                            topic,
                            value=value,
                            key=key,
                            partition=partition,
                            timestamp_ms=group[0].ts_ms,
                            headers=CANONICAL_HEADERS,
                        )
                    )
            for delivery in sent:
                await delivery
        except (KafkaError, OSError) as exc:
            raise KafkaUnavailable(f"Kafka did not acknowledge the events: {exc}") from exc
        self.events += len(events)
        self.messages += len(sent)

    async def dead_letter(
        self, value: bytes, headers: list[tuple[str, bytes]], key: bytes | None = None
    ) -> None:
        """Sends `value` to the dead-letter topic and returns once Kafka acknowledged it (record time: now)."""
        producer = self._require()
        try:
            delivery = await producer.send(self.topics.dead_letters, value=value, key=key, headers=headers)
            await delivery
        except (KafkaError, OSError) as exc:
            raise KafkaUnavailable(f"Kafka did not acknowledge the dead letter: {exc}") from exc

    async def _count_partitions(self, topic: str) -> int:
        try:
            found = await self._require().partitions_for(topic)
        except (KafkaError, OSError) as exc:
            raise KafkaUnavailable(f"cannot read the partitions of topic {topic!r}: {exc}") from exc
        if not found:
            raise KafkaUnavailable(f"topic {topic!r} does not exist (create it with `pulse topics`)")
        self._partitions[topic] = len(found)
        return len(found)

    def _require(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise KafkaUnavailable("the sender is not started")
        return self._producer
