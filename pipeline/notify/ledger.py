"""What the notifier already posted where: a Kafka topic keyed `<destination>\\t<alert id>`.

The alerts topic's offsets are committed only once every matching destination has the alerts before them,
so after a crash (or a rebalance) a notifier re-reads alerts some destinations already have. The ledger is
how it recognises them: every delivered (or permanently refused) alert is written here once its API
answered, and a notifier reads the whole ledger when it starts and again whenever partitions are assigned
to it (another notifier may have delivered them). A Kafka topic rather than a local file, so that several
notifiers sharing the group share it too.

The topic keeps records for `ledger_retention_h` (a ledger entry matters only while its alert may still be
re-read, i.e. until its offset is committed) and is compacted, so a key written twice is stored once.

Alerts held back as too old are written here too, up to `HELD_BACK_PER_RECORD` of them in a record
(outcome `held_back_many`: their ids and the oldest and newest `fired_at_ms`; before, a record each,
outcome `held_back`, which is still read), and so is each line announcing them, under its own id with the
number it announced (`held_back`): reading the ledger in order, a destination's held-back entries not
covered by a later line are what a notifier stopped before announcing (a crash), and the next one to
start announces them (`unannounced`).

What remains: a crash between an API's 200 and the ledger write's acknowledgement forgets that one
delivery, so its message is posted again after the restart (at most one message per destination: each
destination sends its next message only after the ledger acknowledged the previous one). No chat API here
takes an idempotency key; the generic webhook sends the stable delivery id for receivers that deduplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from pipeline.errors import NotifierKafkaError
from pipeline.kafka_clients import described_partitions, known_partitions
from pipeline.notify.held_back import HeldBackReport
from schemas import KafkaSettings, durability_configs
from schemas.outputs import Alert

CATCH_UP_TIMEOUT_S = 60.0
# kafka-python 3.0.12 waits for a ListOffsets answer as long as the whole call may take: one request to a
# broker that is restarting (connected, not answering) used up the default 30 s, and with it the notifier's
# start-up window (seen in CI). Ten seconds a call leaves the start-up time to try again with new clients.
OFFSETS_TIMEOUT_MS = 10_000
WRITE_TIMEOUT_S = 30.0
# Held-back alerts per ledger record: a backfill holds back every alert, and a record (a send and its
# acknowledgement) each cost the notifier about as much CPU as the stream worker spent on the whole replay
# (measured: 111k alerts of a 400k-event `pulse run --replay`, 10.9 s).
HELD_BACK_PER_RECORD = 2_000


def ledger_key(destination: str, alert_id: str) -> str:
    return f"{destination}\t{alert_id}"


@dataclass(slots=True)
class Unannounced:
    """Alerts held back for one destination that no line has announced yet."""

    count: int
    oldest_fired_ms: int
    newest_fired_ms: int


def unannounced(records: Iterable[tuple[str, bytes | None]]) -> dict[str, Unannounced]:
    """By destination, from ledger records in ledger order: each held-back entry adds one, each line takes
    away the number it announced (entries older than the retention are gone: never below zero)."""
    found: dict[str, Unannounced] = {}
    for key, value in records:
        if value is None or b"held_back" not in value:  # deliveries and refusals: most of the ledger
            continue
        destination = key.partition("\t")[0]
        entry = orjson.loads(value)
        outcome = entry.get("outcome")
        if outcome in ("held_back", "held_back_many"):
            if outcome == "held_back":
                count, oldest = 1, int(entry.get("fired_at_ms", 0))
                newest = oldest
            else:
                count = len(entry.get("alert_ids", ()))
                oldest, newest = int(entry.get("oldest_fired_ms", 0)), int(entry.get("newest_fired_ms", 0))
            seen = found.get(destination)
            if seen is None:
                found[destination] = Unannounced(count, oldest, newest)
            else:
                seen.count += count
                seen.oldest_fired_ms = min(seen.oldest_fired_ms, oldest)
                seen.newest_fired_ms = max(seen.newest_fired_ms, newest)
        elif destination in found:  # a line, delivered or refused: either way said (or never to be)
            found[destination].count -= int(entry.get("held_back", 0))
            if found[destination].count <= 0:
                del found[destination]
    return found


class DeliveryLedger:
    """`start()`/`catch_up()` block (run them off the event loop); `delivered` and `remember` are in-memory;
    `record`, `record_held_back` and `record_report` send through the caller's producer and await the
    acknowledgements. After `start()`, `unannounced` holds what earlier notifiers held back and did not
    announce."""

    def __init__(
        self, kafka: KafkaSettings, topic: str, retention_h: float, replication_factor: int = 1
    ) -> None:
        self.kafka = kafka
        self.topic = topic
        self.retention_h = retention_h
        self.replication_factor = replication_factor
        self._known: set[str] = set()
        self._reader: KafkaConsumer | None = None
        self.unannounced: dict[str, Unannounced] = {}

    def start(self) -> list[str]:
        """Creates the topic if missing and reads it to the end; returns the keys found."""
        retention_ms = int(self.retention_h * 3_600_000)
        config = {
            "cleanup.policy": "compact,delete",
            "retention.ms": str(retention_ms),
            "segment.ms": str(max(60_000, min(retention_ms // 4, 86_400_000))),  # old segments can go
            **durability_configs(self.replication_factor),
        }
        try:
            admin = KafkaAdminClient(**self.kafka.client_config())
            try:
                partitions = wait_for_partitions(admin, self.topic)
                if not partitions:
                    # Already there: another notifier created it meanwhile, what we wanted.
                    with contextlib.suppress(TopicAlreadyExistsError):
                        admin.create_topics(
                            [NewTopic(self.topic, 1, self.replication_factor, topic_configs=config)]
                        )
                    partitions = wait_for_partitions(admin, self.topic, CATCH_UP_TIMEOUT_S)
            finally:
                admin.close()
            if not partitions:
                raise NotifierKafkaError(f"topic {self.topic} does not exist (or has no partitions)")
            self._reader = KafkaConsumer(**self.kafka.client_config(), enable_auto_commit=False)
            self._reader.assign([TopicPartition(self.topic, p) for p in partitions])
            self._reader.seek_to_beginning()
        except (KafkaError, OSError) as exc:
            raise NotifierKafkaError(f"cannot open the delivery ledger {self.topic}: {exc}") from exc
        keys: list[str] = []

        def keeping_keys() -> Iterator[tuple[str, bytes | None]]:
            for key, value in self._records():
                keys.extend(_alert_keys(key, value))
                yield key, value

        # Only here: later reads also bring back this notifier's own entries, already in its tallies.
        self.unannounced = unannounced(keeping_keys())
        return keys

    def stop(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def catch_up(self) -> list[str]:
        """Reads what was written since the last call, up to the current end; returns those keys."""
        return [alert_key for key, value in self._records() for alert_key in _alert_keys(key, value)]

    def _records(self) -> Iterator[tuple[str, bytes | None]]:
        """(key, value) of each record up to the current end, in ledger order (one partition)."""
        reader = self._reader
        if reader is None:
            raise NotifierKafkaError("the delivery ledger is not started")
        deadline = time.monotonic() + CATCH_UP_TIMEOUT_S
        try:
            partitions = list(reader.assignment())
            end = reader.end_offsets(partitions, timeout_ms=OFFSETS_TIMEOUT_MS)
            while any(reader.position(tp, timeout_ms=OFFSETS_TIMEOUT_MS) < end[tp] for tp in partitions):
                if time.monotonic() > deadline:
                    raise NotifierKafkaError(
                        f"reading the delivery ledger {self.topic} took over {CATCH_UP_TIMEOUT_S:.0f} s"
                    )
                for records in reader.poll(timeout_ms=500, max_records=50_000).values():
                    yield from ((r.key.decode(), r.value) for r in records if r.key is not None)
        except KafkaError as exc:
            raise NotifierKafkaError(f"cannot read the delivery ledger {self.topic}: {exc}") from exc

    def remember(self, keys: Iterable[str]) -> None:
        self._known.update(keys)

    def delivered(self, destination: str, alert_id: str) -> bool:
        return ledger_key(destination, alert_id) in self._known

    def __len__(self) -> int:
        return len(self._known)

    async def record(
        self, producer: KafkaProducer, destination: str, alert_ids: Iterable[str], outcome: str, at_ms: int
    ) -> None:
        """Remembers the deliveries at once, then writes them and waits for Kafka's acknowledgement."""
        value = orjson.dumps({"outcome": outcome, "at_ms": at_ms})
        await self._write(producer, [(ledger_key(destination, alert_id), value) for alert_id in alert_ids])

    async def record_held_back(
        self, producer: KafkaProducer, destination: str, alerts: Sequence[Alert], at_ms: int
    ) -> None:
        """Alerts held back from `destination` as too old: never to be posted there, also after a restart.
        Up to `HELD_BACK_PER_RECORD` in a record, keyed by its first and last alert and their number (an
        alert held back again after a crash may land in another record: both are kept)."""
        entries = []
        for start in range(0, len(alerts), HELD_BACK_PER_RECORD):
            chunk = alerts[start : start + HELD_BACK_PER_RECORD]
            fired = [a.fired_at_ms for a in chunk]
            value = {
                "outcome": "held_back_many", "at_ms": at_ms, "alert_ids": [a.alert_id for a in chunk],
                "oldest_fired_ms": min(fired), "newest_fired_ms": max(fired),
            }  # fmt: skip
            key = ledger_key(destination, f"held-back:{chunk[0].alert_id}:{chunk[-1].alert_id}:{len(chunk)}")
            entries.append((key, orjson.dumps(value)))
        self.remember(ledger_key(destination, a.alert_id) for a in alerts)
        await self._write(producer, entries)

    async def record_report(
        self, producer: KafkaProducer, report: HeldBackReport, outcome: str, at_ms: int
    ) -> None:
        """The line announcing `report.count` held-back alerts was posted (or refused for good)."""
        value = orjson.dumps({"outcome": outcome, "at_ms": at_ms, "held_back": report.count})
        await self._write(producer, [(ledger_key(report.destination, report.delivery_id), value)])

    async def _write(self, producer: KafkaProducer, entries: list[tuple[str, bytes]]) -> None:
        self.remember(key for key, _ in entries)
        loop = asyncio.get_running_loop()
        try:
            acks = [
                acknowledged(loop, producer.send(self.topic, key=key.encode(), value=value))
                for key, value in entries
            ]
            await asyncio.wait_for(asyncio.gather(*acks), WRITE_TIMEOUT_S)
        except (KafkaError, TimeoutError) as exc:
            raise NotifierKafkaError(f"cannot write to the delivery ledger {self.topic}: {exc!r}") from exc


def _alert_keys(key: str, value: bytes | None) -> list[str]:
    """The ledger keys a record stands for: its own, or those of the alerts a held-back record lists."""
    if value is None or b"held_back_many" not in value:
        return [key]
    entry = orjson.loads(value)
    if entry.get("outcome") != "held_back_many":
        return [key]
    destination = key.partition("\t")[0]
    return [ledger_key(destination, alert_id) for alert_id in entry.get("alert_ids", ())]


def wait_for_partitions(admin: KafkaAdminClient, topic: str, wait_s: float = 0.0) -> list[int]:
    """The topic's partitions as the cluster describes them, waiting up to `wait_s` for a topic created a
    moment ago; empty if it does not exist (see `described_partitions`: this topic alone is described)."""
    deadline = time.monotonic() + wait_s
    while True:
        found = described_partitions(admin, [topic]).get(topic, [])
        if found or time.monotonic() >= deadline:
            return found
        time.sleep(0.1)


def partitions_of(consumer: KafkaConsumer, topic: str, timeout_s: float = CATCH_UP_TIMEOUT_S) -> set[int]:
    found = known_partitions(consumer, topic, timeout_s)
    if not found:
        raise NotifierKafkaError(f"topic {topic} does not exist (or has no partitions)")
    return found


def acknowledged(loop: asyncio.AbstractEventLoop, future: Any) -> asyncio.Future[None]:
    """kafka-python's send future (resolved on its I/O thread) as an asyncio future of this loop."""
    done: asyncio.Future[None] = loop.create_future()

    def settle(error: BaseException | None) -> None:
        if done.done():
            return
        if error is None:
            done.set_result(None)
        else:
            done.set_exception(error)

    future.add_callback(lambda _: loop.call_soon_threadsafe(settle, None))
    future.add_errback(lambda exc: loop.call_soon_threadsafe(settle, exc))
    return done
