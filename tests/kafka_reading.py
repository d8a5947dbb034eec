"""Reading back what landed in Kafka, for integration tests: every record of some topics, from the start."""

from __future__ import annotations

from dataclasses import dataclass

from pulse.topics import TopicRecord, read_records
from schemas import CanonicalEvent, KafkaSettings, decode_message


@dataclass(frozen=True)
class Record(TopicRecord):
    @property
    def events(self) -> list[CanonicalEvent]:
        decoded = list(decode_message(self.value))
        assert all(isinstance(e, CanonicalEvent) for e in decoded), decoded
        return decoded  # type: ignore[return-value]


def read_all(kafka: KafkaSettings, *topics: str) -> list[Record]:
    """Every record currently in `topics`, in topic-partition-offset order; stops at the end offsets."""
    return [Record(**vars(r)) for r in read_records(kafka, *topics)]
