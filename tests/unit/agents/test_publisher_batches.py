"""The publisher's batching, on a producer that only records what it is given: which messages, where."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents import EventPublisher, PublisherSettings
from schemas import (
    CANONICAL_HEADERS,
    CanonicalEvent,
    KafkaSettings,
    Topics,
    decode_events,
    encode_events,
    validate,
)
from schemas.wire import partition_of
from tests.events import BASE_TS_MS, wire

PARTITIONS = 3
EXAMPLES = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@dataclass
class Sent:
    topic: str
    value: bytes
    key: bytes | None
    headers: list[tuple[str, bytes]]
    partition: int | None = None  # a dead letter's is the producer's choice
    timestamp_ms: int | None = None


class Acknowledged:
    is_done = True
    exception = None

    def failed(self) -> bool:
        return False


@dataclass
class RecordingProducer:
    sent: list[Sent] = field(default_factory=list)

    def send(self, topic: str, **record: Any) -> Acknowledged:
        self.sent.append(Sent(topic, **record))
        return Acknowledged()

    def partitions_for(self, topic: str) -> set[int]:
        return set(range(PARTITIONS))

    def flush(self, timeout: float | None = None) -> None:
        pass

    def close(self, timeout: float | None = None) -> None:
        pass


def recording_publisher(settings: PublisherSettings) -> tuple[EventPublisher, RecordingProducer]:
    publisher = EventPublisher(
        KafkaSettings(bootstrap_servers="localhost:1"), settings, Topics(), clock=lambda: 0.0
    )
    producer = RecordingProducer()
    publisher._producer = producer  # type: ignore[assignment]  # no broker in unit tests
    return publisher, producer


@st.composite
def events(draw: st.DrawFn) -> CanonicalEvent:
    kind = draw(st.sampled_from(["like", "unlike", "repost", "post", "comment", "follow"]))
    n = draw(st.integers(0, 10_000))
    fields: dict[str, Any] = {
        "event_id": f"e{n}",
        "community_id": draw(st.sampled_from(["c1", "c2"])),
        "post_id": "-" if kind == "follow" else draw(st.sampled_from(["p1", "p2", "p3", "p4", "p5"])),
        "ts": BASE_TS_MS + draw(st.integers(0, 10**6)),
    }
    if kind == "comment":
        # Control characters take 6 bytes in JSON, more than a batch's estimate counts: messages get split.
        fields["text"] = draw(st.text(max_size=300) | st.text("\x01\x02", max_size=400))
    return validate(wire(kind, **fields))


blocks = st.lists(st.lists(events(), max_size=40), max_size=8)
batch_settings = st.builds(
    PublisherSettings,
    batch_events=st.integers(1, 30),
    batch_bytes=st.integers(1024, 6000),
    linger_ms=st.just(0),
)


@EXAMPLES
@given(blocks, batch_settings)
def test_a_block_at_once_gives_the_messages_of_its_events_one_by_one(
    given_blocks: list[list[CanonicalEvent]], settings: PublisherSettings
) -> None:
    by_block, by_block_sent = recording_publisher(settings)
    one_by_one, one_by_one_sent = recording_publisher(settings)
    for block in given_blocks:
        by_block.publish_many(block)
        for event in block:
            one_by_one.publish(event)
    by_block.flush()
    one_by_one.flush()
    assert by_block_sent.sent == one_by_one_sent.sent


@EXAMPLES
@given(blocks, batch_settings)
def test_messages_are_canonical_ndjson_of_one_partition_in_order(
    given_blocks: list[list[CanonicalEvent]], settings: PublisherSettings
) -> None:
    publisher, producer = recording_publisher(settings)
    for block in given_blocks:
        publisher.publish_many(block)
    publisher.flush()

    landed: dict[tuple[str, int], list[CanonicalEvent]] = defaultdict(list)
    for record in producer.sent:
        events, rejected = decode_events(record.value)
        assert not rejected and events
        assert record.value == encode_events(events)
        assert record.headers == CANONICAL_HEADERS
        assert record.timestamp_ms == events[0].ts_ms
        assert len(record.value) <= settings.batch_bytes or len(events) == 1
        assert len(events) <= settings.batch_events
        keys = {e.post_key for e in events}
        assert record.key == (keys.pop().encode() if len(keys) == 1 else None)
        for event in events:
            assert record.topic == Topics().for_type(event.type)
            assert record.partition == partition_of(event.post_key.encode(), PARTITIONS)
        landed[(record.topic, record.partition)].extend(events)
    expected: dict[tuple[str, int], list[CanonicalEvent]] = defaultdict(list)
    for event in (e for block in given_blocks for e in block):
        expected[(Topics().for_type(event.type), partition_of(event.post_key.encode(), PARTITIONS))].append(
            event
        )
    assert landed == expected
    assert publisher.stats.events == sum(map(len, given_blocks))


def test_a_message_over_batch_bytes_is_split_each_part_stamped_with_its_first_event() -> None:
    """A batch's size is estimated as it fills; texts of control characters (6 bytes each in JSON) exceed
    the estimate, and the encoded message is cut in halves until each part fits."""
    publisher, producer = recording_publisher(PublisherSettings(batch_events=10, batch_bytes=3000))
    comments = [
        validate(wire("comment", event_id=f"m{i}", ts=BASE_TS_MS + i, text="\x01" * 400)) for i in range(4)
    ]
    publisher.publish_many(comments)
    publisher.flush()
    assert [decode_events(r.value)[0] for r in producer.sent] == [[c] for c in comments]
    assert [r.timestamp_ms for r in producer.sent] == [c.ts_ms for c in comments]
    assert all(len(r.value) <= 3000 for r in producer.sent)
