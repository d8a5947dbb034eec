"""Reading back what landed in Kafka, for integration tests: every record of some topics, from the start."""

from __future__ import annotations

from dataclasses import dataclass

from kafka import KafkaConsumer, TopicPartition

from schemas import CanonicalEvent, KafkaSettings, decode_message


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp: int
    headers: dict[str, bytes]

    @property
    def events(self) -> list[CanonicalEvent]:
        decoded = list(decode_message(self.value))
        assert all(isinstance(e, CanonicalEvent) for e in decoded), decoded
        return decoded  # type: ignore[return-value]


def read_all(kafka: KafkaSettings, *topics: str) -> list[Record]:
    """Every record currently in `topics`, in partition-offset order; stops at the end offsets."""
    consumer = KafkaConsumer(**kafka.client_config(), enable_auto_commit=False)
    try:
        partitions = [
            TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())
        ]
        consumer.assign(partitions)
        consumer.seek_to_beginning()
        end = consumer.end_offsets(partitions)
        records: list[Record] = []
        remaining = {tp for tp in partitions if end[tp] > 0}
        while remaining:
            for tp, batch in consumer.poll(timeout_ms=2000).items():
                for r in batch:
                    records.append(
                        Record(r.topic, r.partition, r.offset, r.key, r.value, r.timestamp, dict(r.headers))
                    )
                if consumer.position(tp) >= end[tp]:
                    remaining.discard(tp)
        return sorted(records, key=lambda r: (r.topic, r.partition, r.offset))
    finally:
        consumer.close()
