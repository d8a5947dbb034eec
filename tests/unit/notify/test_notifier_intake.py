"""The notifier's intake of alert records and their hold-back as too old, with a producer that acknowledges
at once (no broker): which offsets wait, what the ledger gets, what is counted."""

from __future__ import annotations

import asyncio
import io
from typing import Any, NamedTuple

import orjson
from kafka import TopicPartition

from pipeline.notify.destinations import build_destinations
from pipeline.notify.notifier import Notifier
from pipeline.notify.outbox import Outbox
from pipeline.notify.settings import NotifySettings, StdoutDestination
from schemas import KafkaSettings, Topics
from schemas.outputs import Alert, AlertKind, encode_outputs

TP = TopicPartition("t-alerts", 0)


class Record(NamedTuple):
    offset: int
    key: bytes | None
    value: bytes


class Sent:
    def add_callback(self, callback: Any) -> Sent:
        callback(None)
        return self

    def add_errback(self, errback: Any) -> Sent:
        return self


class AcknowledgingProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []

    def send(self, topic: str, key: bytes, value: bytes, headers: Any = None) -> Sent:
        self.sent.append((topic, key, value))
        return Sent()


def alert(comment: str, fired_at_ms: int = 1_767_272_400_000) -> Alert:
    return Alert(
        alert_id=f"vk:c1:{comment}:unanswered_comment", kind=AlertKind.UNANSWERED, platform="vk",
        community_id="c1", post_id="p1", comment_id=comment, author_id="u1", snippet="hello?",
        commented_at_ms=fired_at_ms - 3_600_000, fired_at_ms=fired_at_ms, waited_s=3600.0, sla_s=3600.0,
    )  # fmt: skip


def backfill_notifier() -> tuple[Notifier, AcknowledgingProducer]:
    settings = NotifySettings(max_alert_age_s=0)
    destinations = build_destinations(
        [StdoutDestination(name="stdout", kind="stdout")], settings, stdout=io.StringIO()
    )
    notifier = Notifier(
        settings, KafkaSettings(), Topics.prefixed("t-"), destinations, ledger_topic="t-ledger"
    )
    producer = AcknowledgingProducer()
    notifier._producer = producer  # type: ignore[assignment]
    notifier._outboxes = [
        Outbox(d, notifier.settle, retry_initial_s=1, retry_max_s=1, clock=notifier.clock,
               age_limit=notifier.age_limit)
        for d in destinations
    ]  # fmt: skip
    notifier._book.start_at(TP, 0)
    return notifier, producer


def test_a_records_alerts_hold_its_offset_until_the_ledger_has_them_held_back() -> None:
    async def scenario() -> None:
        notifier, producer = backfill_notifier()
        records = [
            Record(0, b"k", encode_outputs([alert("m1", 1_000), alert("m2", 3_000), alert("m1", 1_000)])),
            Record(1, b"k", encode_outputs([alert("m3", 2_000)])),
        ]
        for record in records:
            notifier._intake(TP, record, notifier.clock())
        assert notifier._book.committable() == {TP: 0}, "nothing recorded yet"
        await notifier._hold_back()
        assert notifier._book.committable() == {TP: 2}
        assert notifier.stats.alerts == 4
        assert notifier.stats.held_back == 3, "the alert read twice is held back once"
        (entry,) = [orjson.loads(value) for _, _, value in producer.sent]
        assert entry["outcome"] == "held_back_many"
        assert sorted(entry["alert_ids"]) == [alert(c).alert_id for c in ("m1", "m2", "m3")]
        run = notifier._outboxes[0].held_back
        assert (run.count, run.oldest_fired_ms, run.newest_fired_ms) == (3, 1_000, 3_000)
        # Read again (a rebalance): the ledger has them, nothing waits on the record.
        notifier._intake(TP, Record(2, b"k", encode_outputs([alert("m2", 3_000)])), notifier.clock())
        assert notifier.stats.already_delivered == 1
        assert notifier._book.committable() == {TP: 3}

    asyncio.run(scenario())


def test_an_undecodable_record_waits_for_its_dead_letter_only() -> None:
    async def scenario() -> None:
        notifier, producer = backfill_notifier()
        notifier._intake(TP, Record(0, b"k", b"{not json\n"), notifier.clock())
        assert notifier._book.committable() == {TP: 0}
        for _ in range(3):  # the dead letter's acknowledgement, then its callback
            await asyncio.sleep(0)
        assert notifier._book.committable() == {TP: 1}
        assert [topic for topic, _, _ in producer.sent] == ["t-dead-letters"]

    asyncio.run(scenario())
