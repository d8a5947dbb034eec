"""The producer core every ingest path shares: canonical events to their topics, batched per partition.

Events are routed to the topic for their type and to the partition of their post key (the same murmur2
arithmetic Kafka's own clients use, so a keyed single-event message lands on the same partition). Each
partition's events accumulate into one NDJSON message until `batch_events`, `batch_bytes` or `linger_ms`
is reached. A message holding one post's events carries that post's key; a message mixing several posts
of one partition carries no key (the partition is set explicitly). The record timestamp is the first
event's time.

Events are encoded as they are buffered, a caller's block at once in one compiled pass (`encode_events`)
while they are fresh in memory, and a batch holds their lines, whatever form their input had (a replayed
line may give `ts` as RFC 3339): every message written here is canonical NDJSON and says so in its headers
(`CANONICAL_HEADERS`), which lets the warehouse sink store it without decoding it again. A batch's size is
estimated while it fills (an event's text may be long) and checked once it is joined: a message over
`batch_bytes` is split in halves. `publish_many` is the hot path (the replay's): an event costs one route
lookup by its own fields, and a post's partition is computed once whichever topics its events go to.

The producer is idempotent with acks=all, and every send's result is checked: `flush()` raises
`DeliveryFailed` if any message since the previous flush was not acknowledged, so nothing is dropped
silently.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from kafka import KafkaProducer
from kafka.errors import KafkaError, KafkaTimeoutError
from pydantic import BaseModel, Field

from agents.errors import DeliveryFailed, KafkaUnavailable
from schemas import (
    CANONICAL_HEADERS,
    CanonicalEvent,
    ClockLimit,
    EventType,
    KafkaSettings,
    Topics,
    dead_letter_headers,
    encode_event,
    encode_events,
    parse_line,
)
from schemas.wire import key_hash

log = logging.getLogger(__name__)


class PublisherSettings(BaseModel):
    batch_events: int = Field(default=500, ge=1, le=100_000)
    batch_bytes: int = Field(default=512 * 1024, ge=1024, le=900_000)
    linger_ms: int = Field(default=50, ge=0, le=60_000)
    delivery_timeout_s: float = Field(default=60.0, gt=0, le=600)
    connect_timeout_s: float = Field(default=30.0, gt=0, le=600)
    # NDJSON events shrink about 5x under lz4 for 0.2 s of CPU per 200 MB (zstd: 10x for 0.4 s), which the
    # broker, the workers and the loader save over in copies. 1M events in `pulse bench`, alternating:
    # lz4 101.3k, 109.2k, 112.2k events/s; none 97.7k, 103.8k, 108.2k; zstd 101.3k, 112.5k, 109.4k.
    compression: Literal["none", "gzip", "lz4", "zstd", "snappy"] = "lz4"


@dataclass(slots=True)
class PublisherStats:
    events: int = 0
    messages: int = 0
    bytes: int = 0
    dead_letters: int = 0


# What an event is counted as while its batch fills: more than a typical event's JSON (about 200 bytes),
# plus its text at the most UTF-8 can take; the encoded message is checked against `batch_bytes` anyway.
_EVENT_BYTES = 400
_TEXT_BYTES_PER_CHAR = 4
# (type, post) pairs whose partition and post key are remembered (murmur2 in Python costs microseconds an
# event, the key's string a fraction of one), and as many post keys' hashes; past that, all are forgotten
# and computed again: a simulator or webhook receiver running for months meets millions of posts, and each
# pair kept costs a few hundred bytes.
ROUTES_REMEMBERED = 100_000


@dataclass(slots=True)
class _Batch:
    lines: list[bytes] = field(default_factory=list)  # each event's canonical JSON, without its newline
    first_ms: int = 0  # the first event's time, which the record carries
    size: int = 0  # estimated
    key: str | None = None
    mixed: bool = False
    started_at: float = 0.0


@dataclass(slots=True, eq=False)
class _Slot:
    """One topic-partition, and the batch open for it (also in `EventPublisher._batches`, in the order the
    batches were opened, which `poll` and `flush` send them in)."""

    topic: str
    partition: int
    batch: _Batch | None = None


_Route = tuple[_Slot, str]  # where an event goes, and its post key (which a one-post message carries)


class EventPublisher:
    """Owns one KafkaProducer. Use as a context manager, or call `start()` and `stop()`."""

    def __init__(
        self,
        kafka: KafkaSettings,
        settings: PublisherSettings | None = None,
        topics: Topics | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kafka = kafka
        self.settings = settings or PublisherSettings()
        self.topics = topics or Topics()
        self.stats = PublisherStats()
        self._clock = clock
        self._producer: KafkaProducer | None = None
        self._partitions: dict[str, int] = {}
        self._key_hashes: dict[str, int] = {}  # post key -> `key_hash`, whichever topics its events go to
        self._topic_of_type = {t: self.topics.for_type(t) for t in EventType}
        # (type, platform, community, post) -> its route: the hot path's only lookup per event. Keyed by the
        # event's own fields, as building its post key's string costs more than the lookup.
        self._route: dict[tuple[EventType, str, str, str], _Route] = {}
        self._slots: dict[tuple[str, int], _Slot] = {}
        self._batches: dict[_Slot, _Batch] = {}
        self._pending: list[Any] = []
        self._failures: list[BaseException] = []

    def __enter__(self) -> EventPublisher:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        compression = None if self.settings.compression == "none" else self.settings.compression
        try:
            config = self.kafka.client_config()
            delivery_ms = int(self.settings.delivery_timeout_s * 1000)
            # kafka-python insists that one request fits in the delivery timeout.
            config["request_timeout_ms"] = min(config["request_timeout_ms"], delivery_ms - 10)
            self._producer = KafkaProducer(
                **config,
                acks="all",
                enable_idempotence=True,
                linger_ms=5,
                batch_size=1024 * 1024,
                max_request_size=1024 * 1024,
                compression_type=compression,
                delivery_timeout_ms=delivery_ms,
                max_block_ms=int(self.settings.delivery_timeout_s * 1000),
                bootstrap_timeout_ms=int(self.settings.connect_timeout_s * 1000),
                allow_auto_create_topics=False,
            )
        except (KafkaError, OSError) as exc:
            raise KafkaUnavailable(f"cannot reach Kafka at {self.kafka.bootstrap_servers}: {exc}") from exc

    def stop(self) -> None:
        """Flushes what is buffered (raising if it cannot be delivered), then closes the producer."""
        if self._producer is None:
            return
        try:
            self.flush()
        finally:
            self._producer.close(timeout=self.settings.delivery_timeout_s)
            self._producer = None

    def publish(self, event: CanonicalEvent) -> None:
        """Buffers one event."""
        self._buffer(event, encode_event(event))

    def publish_many(self, events: Iterable[CanonicalEvent]) -> None:
        """Buffers `events`, in order, into the same messages as a `publish` of each in turn would.

        They are encoded here, together, while they are fresh in memory: a batch holds their lines until it
        is sent, not the events, which are freed with the caller's block."""
        if not isinstance(events, list | tuple):
            events = list(events)
        lines = encode_events(events).split(b"\n")
        lines.pop()  # what follows the last newline: nothing
        buffer = self._buffer
        for event, line in zip(events, lines, strict=True):
            buffer(event, line)

    def _buffer(self, event: CanonicalEvent, line: bytes) -> None:
        """`event`, encoded as `line`, into its topic-partition's batch, which is sent once full. Every event
        published passes here: one route lookup, by the event's own fields."""
        fields = (event.type, event.platform, event.community_id, event.post_id)
        slot, key = self._route.get(fields) or self._new_route(event, fields)
        batch = slot.batch
        if batch is None:
            batch = slot.batch = self._batches[slot] = _Batch(
                key=key, started_at=self._clock(), first_ms=event.ts_ms
            )
        elif key != batch.key:
            batch.mixed = True
        batch.lines.append(line)
        text = event.text
        batch.size += _EVENT_BYTES if text is None else _EVENT_BYTES + _TEXT_BYTES_PER_CHAR * len(text)
        if len(batch.lines) >= self.settings.batch_events or batch.size >= self.settings.batch_bytes:
            self._send_batch(slot)

    def poll(self) -> None:
        """Sends every batch older than `linger_ms`; call it when events are sparse."""
        if not self._batches:
            return
        horizon = self._clock() - self.settings.linger_ms / 1000
        for slot in [s for s, b in self._batches.items() if b.started_at <= horizon]:
            self._send_batch(slot)

    def flush(self, timeout_s: float | None = None) -> None:
        """Sends all batches and waits for every acknowledgement since the last flush."""
        for slot in list(self._batches):
            self._send_batch(slot)
        producer = self._require_producer()
        try:
            producer.flush(timeout=timeout_s or self.settings.delivery_timeout_s)
        except KafkaTimeoutError as exc:
            raise KafkaUnavailable(f"Kafka did not acknowledge in time: {exc}") from exc
        pending, self._pending = self._pending, []
        for future in pending:
            if future.failed():
                self._failures.append(future.exception)
            elif not future.is_done:
                self._failures.append(KafkaTimeoutError("no acknowledgement"))
        if self._failures:
            failures, self._failures = self._failures, []
            raise DeliveryFailed(len(failures), failures[0])

    def send_now(self, events: Sequence[CanonicalEvent], timeout_s: float | None = None) -> None:
        """Sends `events` as their own messages and returns only once Kafka acknowledged all of them.

        For callers that must not answer before the events are safe (webhooks). Thread-safe: it does not
        touch the buffered batches.
        """
        producer = self._require_producer()
        if not events:  # a readiness probe: ask for metadata, which needs a live broker
            try:
                producer.partitions_for(self.topics.dead_letters)
            except KafkaError as exc:
                raise KafkaUnavailable(f"Kafka is not reachable: {exc}") from exc
            return
        grouped: dict[tuple[str, int], list[CanonicalEvent]] = {}
        for event in events:
            topic = self.topics.for_type(event.type)
            grouped.setdefault((topic, self._partition_for(topic, event.post_key)), []).append(event)
        try:
            futures = []
            for (topic, partition), group in grouped.items():
                keys = {e.post_key for e in group}
                futures.append(
                    producer.send(
                        topic,
                        value=encode_events(group),
                        key=keys.pop().encode() if len(keys) == 1 else None,
                        partition=partition,
                        timestamp_ms=group[0].ts_ms,
                        headers=CANONICAL_HEADERS,
                    )
                )
            # Sent now, not after the producer's linger: a caller is waiting (flush also waits for any other
            # record in flight, which the receiver, the only caller, does not have).
            producer.flush(timeout=timeout_s or self.settings.delivery_timeout_s)
            for future in futures:
                future.get(timeout=timeout_s or self.settings.delivery_timeout_s)
        except (KafkaError, OSError) as exc:
            raise KafkaUnavailable(f"Kafka did not acknowledge the events: {exc}") from exc
        self.stats.events += len(events)
        self.stats.messages += len(futures)

    def publish_in_time(self, event: CanonicalEvent, limit: ClockLimit, *, stage: str, source: str) -> bool:
        """Buffers `event`, unless it is stamped after `limit` (the wall clock plus the allowed skew): then
        its canonical bytes go to the dead-letter topic with the reason, and the answer is False."""
        refused = limit.refusal(event)
        if refused is None:
            self.publish(event)
            return True
        self.dead_letter(
            encode_event(event), dead_letter_headers(stage, refused.code, refused.reason, source),
            key=event.post_key.encode(),
        )  # fmt: skip
        return False

    def dead_letter(self, value: bytes, headers: list[tuple[str, bytes]], key: bytes | None = None) -> None:
        """Sends the original bytes to the dead-letter topic; its delivery is checked by the next flush."""
        future = self._require_producer().send(
            self.topics.dead_letters, value=value, key=key, headers=headers
        )
        self._track(future)
        self.stats.dead_letters += 1

    def _partition_for(self, topic: str, key: str) -> int:
        count = self._partitions.get(topic)
        if count is None:
            try:
                found = self._require_producer().partitions_for(topic)
            except KafkaError as exc:
                raise KafkaUnavailable(f"cannot read the partitions of topic {topic!r}: {exc}") from exc
            if not found:
                raise KafkaUnavailable(f"topic {topic!r} does not exist (create it with `pulse topics`)")
            count = self._partitions[topic] = len(found)
        hashed = self._key_hashes.get(key)
        if hashed is None:
            if len(self._key_hashes) >= ROUTES_REMEMBERED:
                self._key_hashes.clear()
            hashed = self._key_hashes[key] = key_hash(key.encode())
        return hashed % count  # as `partition_of` gives it

    def _new_route(self, event: CanonicalEvent, fields: tuple[EventType, str, str, str]) -> _Route:
        if len(self._route) >= ROUTES_REMEMBERED:
            self._route.clear()
        key = event.post_key
        topic = self._topic_of_type[event.type]
        where = (topic, self._partition_for(topic, key))
        slot = self._slots.get(where)
        if slot is None:
            slot = self._slots[where] = _Slot(*where)
        route = self._route[fields] = (slot, key)
        return route

    def _send_batch(self, slot: _Slot) -> None:
        batch = self._batches.pop(slot)
        slot.batch = None
        key = None if batch.mixed or batch.key is None else batch.key.encode()
        self._send_lines(slot.topic, slot.partition, key, batch.lines, batch.first_ms)

    def _send_lines(
        self, topic: str, partition: int, key: bytes | None, lines: list[bytes], first_ms: int
    ) -> None:
        value = b"\n".join(lines) + b"\n"
        if len(value) > self.settings.batch_bytes and len(lines) > 1:
            half = len(lines) // 2
            self._send_lines(topic, partition, key, lines[:half], first_ms)
            self._send_lines(topic, partition, key, lines[half:], parse_line(lines[half]).ts_ms)
            return
        future = self._require_producer().send(
            topic,
            value=value,
            key=key,
            partition=partition,
            timestamp_ms=first_ms,
            headers=CANONICAL_HEADERS,
        )
        self._track(future)
        self.stats.events += len(lines)
        self.stats.messages += 1
        self.stats.bytes += len(value)

    def _track(self, future: Any) -> None:
        self._pending.append(future)
        if len(self._pending) >= 10_000:
            # Keep memory bounded on long runs: drop settled futures, remembering the failed ones.
            still = []
            for f in self._pending:
                if not f.is_done:
                    still.append(f)
                elif f.failed():
                    self._failures.append(f.exception)
            self._pending = still

    def _require_producer(self) -> KafkaProducer:
        if self._producer is None:
            raise RuntimeError("EventPublisher used before start()")
        return self._producer
