"""`pulse notify`: alerts from the alerts topic to every matching destination, once, without floods.

Flow: the consumer reads alert records; each alert goes to every destination whose route matches and
whose ledger does not already have it. Each destination has its own outbox (a storm gate, a backlog, and
one worker task that rate-limits, sends and retries), so a destination that is slow or down holds up
nobody else: its backlog grows (up to `max_pending_alerts` over all destinations, after which the
consumer pauses) and is delivered, coalesced into digests, when it returns.

At-least-once: offsets are committed only below the oldest alert some destination still owes
(`delivery_offsets.OffsetBook`), so a crash, kill -9 or rebalance re-reads only alerts that may be owed;
the delivery ledger (`delivery_ledger`) makes the re-read ones that were in fact delivered skip their
destinations. Together: each alert reaches each matching destination once, except for the one window the
ledger describes (a crash between an API's 200 and the ledger's acknowledgement repeats that message).
With several notifiers in the group, a partition that moves while one of its alerts is being sent can
repeat that alert too: the old owner finishes the send while the new one, not finding it in the ledger
yet, sends it as well.

Stale alerts (`held_back`): an alert older than `max_alert_age_s` (wall clock against its event-time
`fired_at_ms`) is not posted. It is settled like a delivery (ledger entry `held_back`, then its offset may
be committed) and counted for its destination; once that destination has had no such alert for
`held_back_quiet_s`, or at shutdown, it gets one line saying how many were held back. The line's own
ledger entry carries that number, so what a crashed notifier held back and never announced is announced
by the next one to start (`DeliveryLedger.unannounced`); a clean stop announces before it exits.

Why kafka-python in a thread rather than aiokafka: the rest of the project (the sink, the publisher, the
topic tools, `KafkaSettings.client_config()`) speaks kafka-python, and its consumer is used here from one
dedicated thread (`_kafka`), so its calls never block the event loop that runs the HTTP side (aiohttp,
all destinations concurrently). kafka-python 3 runs heartbeats on its own I/O thread, so a consumer that
is paused or busy keeps its group membership; its rebalance callbacks run there too, so they only note
what changed and the loop applies it after the poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp
import msgspec
from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer, OffsetAndMetadata, TopicPartition
from kafka.errors import KafkaError

from pipeline.errors import NotifierKafkaError, PipelineError
from pipeline.kafka_clients import rejoin_if_stranded, until_available
from pipeline.notify.destinations import Destination
from pipeline.notify.held_back import AgeLimit, HeldBackReport, Message
from pipeline.notify.ledger import DeliveryLedger, acknowledged, partitions_of
from pipeline.notify.messages import Digest, alerts_of, community_key
from pipeline.notify.offset_book import OffsetBook, Token
from pipeline.notify.outbox import Outbox, Outcome, Owed
from pipeline.notify.settings import NotifySettings
from schemas import KafkaSettings, Topics, dead_letter_headers
from schemas.outputs import Alert, decode_outputs, encode_outputs
from schemas.wire import record_source

log = logging.getLogger(__name__)

R = TypeVar("R")
POLL_MS = 200
STAGE = "notify"
# A fetch is answered once this much of the alerts topic is there, or after FETCH_MAX_WAIT_MS: a live
# alert can wait that long more (against digest windows of a minute), and a stream of alerts comes in
# fewer, larger polls (and held-back ledger records). Answered at the first byte, a replay's 111,000 alerts
# (41 MB) came in 160 polls, each a round of the consumer's, producer's and event loop's threads (the
# notifier's CPU: 2.5 s, 1.9-2.2 s with these).
FETCH_MIN_BYTES = 1 << 20
FETCH_MAX_WAIT_MS = 500


def alert_fetching() -> dict[str, int]:
    """The alerts consumer's fetch settings (see FETCH_MIN_BYTES). A partition gives up to as much per
    fetch: a minimum above that would make a topic of one partition wait out every fetch."""
    return {
        "fetch_min_bytes": FETCH_MIN_BYTES,
        "fetch_max_wait_ms": FETCH_MAX_WAIT_MS,
        "max_partition_fetch_bytes": FETCH_MIN_BYTES,
    }


@dataclass(slots=True)
class NotifierStats:
    records: int = 0
    alerts: int = 0
    already_delivered: int = 0  # skipped: the ledger had them (a re-read after a restart or rebalance)
    messages: int = 0  # messages accepted by destinations (an alert or a digest)
    alerts_delivered: int = 0
    digests: int = 0
    retries: int = 0
    dead_letters: int = 0
    ledger_failures: int = 0
    held_back: int = 0  # too old to post, one per alert and destination (settings.max_alert_age_s)
    held_back_lines: int = 0  # lines posted saying how many were held back


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


class _Rebalances(ConsumerRebalanceListener):  # type: ignore[misc]
    """Notes that partitions were assigned, for a ledger catch-up. It runs on kafka-python's I/O thread,
    which may complete a rebalance while a poll is under way, so the loop never trusts the order of these
    callbacks against the records: it compares the consumer's assignment after each poll instead."""

    def __init__(self) -> None:
        self._assigned = threading.Event()

    def on_partitions_revoked(self, revoked: Any) -> None:
        pass  # the loop sees it in the assignment; in-flight deliveries finish either way

    def on_partitions_assigned(self, assigned: Any) -> None:
        self._assigned.set()

    def take(self) -> bool:
        """Whether partitions were assigned since the last call."""
        assigned = self._assigned.is_set()
        self._assigned.clear()
        return assigned


@dataclass(slots=True)
class _Polled:
    records: dict[TopicPartition, list[Any]]
    assignment: set[TopicPartition]
    starts: dict[TopicPartition, int]  # partitions new to the book -> the next offset to read
    ledger_keys: list[str] = field(default_factory=list)


def _names(partitions: Iterable[TopicPartition]) -> str:
    return ",".join(sorted(f"{tp.topic}/{tp.partition}" for tp in partitions))


class Notifier:
    """Owns the consumer, the producer (ledger and dead letters), the ledger reader and the outboxes.

    `run(should_stop)` returns after a clean stop: digests released, backlogs delivered (for up to
    `shutdown_timeout_s`), offsets committed."""

    def __init__(
        self,
        settings: NotifySettings,
        kafka: KafkaSettings,
        topics: Topics,
        destinations: Sequence[Destination],
        *,
        ledger_topic: str,
        replication_factor: int = 1,
        clock: Callable[[], float] = time.monotonic,
        wall_ms: Callable[[], int] = _wall_ms,
    ) -> None:
        if not destinations:
            raise PipelineError("the notifier needs at least one destination")
        self.settings = settings
        self.kafka = kafka
        self.topics = topics
        self.destinations = list(destinations)
        self.clock = clock
        self.wall_ms = wall_ms
        self.age_limit = AgeLimit(settings.max_alert_age_s, wall_ms)
        self.stats = NotifierStats()
        self.ledger = DeliveryLedger(kafka, ledger_topic, settings.ledger_retention_h, replication_factor)
        self._book: OffsetBook[TopicPartition] = OffsetBook()
        self._rebalances = _Rebalances()
        self._consumer: KafkaConsumer | None = None
        self._producer: KafkaProducer | None = None
        self._thread: ThreadPoolExecutor | None = None
        self._outboxes: list[Outbox] = []
        self._fatal: BaseException | None = None
        self._paused = False

    async def run(self, should_stop: Callable[[], bool]) -> NotifierStats:
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="notify-kafka")
        try:
            self.ledger.remember(await self._kafka(self._start_clients))
            timeout = aiohttp.ClientTimeout(total=self.settings.request_timeout_s)
            async with aiohttp.ClientSession(timeout=timeout) as session:
                self._outboxes = [
                    Outbox(d, self.settle, retry_initial_s=self.settings.retry_initial_s,
                           retry_max_s=self.settings.retry_max_s, clock=self.clock, age_limit=self.age_limit)
                    for d in self.destinations
                ]  # fmt: skip
                self._carry_unannounced()
                workers = [
                    asyncio.create_task(o.run(session), name=f"notify-{o.name}") for o in self._outboxes
                ]
                try:
                    last_commit = self.clock()
                    while not should_stop():
                        self._check(workers)
                        await self._poll()
                        await self._hold_back()
                        self._release_reports(self.clock())
                        for outbox in self._outboxes:
                            outbox.release_digests(self.clock())
                        if self.clock() - last_commit >= self.settings.commit_interval_s:
                            await self._commit()
                            last_commit = self.clock()
                    await self._drain(workers)
                finally:
                    for task in workers:
                        task.cancel()
                    await asyncio.gather(*workers, return_exceptions=True)
            await self._settle_dead_letters()
            await self._commit()
            self.stats.retries = sum(o.retries for o in self._outboxes)
            return self.stats
        finally:
            await self._kafka(self._close_clients)
            self._thread.shutdown(wait=True)

    # --- the consumer side -----------------------------------------------------------------------------

    def _start_clients(self) -> list[str]:
        """Opens the producer, the ledger and the consumer; tried again, from nothing, on retriable errors
        (a broker of the cluster down) for `kafka.start_retry_s`: see pipeline.kafka_clients."""
        return until_available(self._open_clients, "the notifier is starting", self.kafka.start_retry_s)

    def _open_clients(self) -> list[str]:
        config = self.kafka.client_config()
        session_ms = int(self.settings.session_timeout_s * 1000)
        try:
            self._producer = KafkaProducer(
                **config, acks="all", enable_idempotence=True, linger_ms=2, max_block_ms=10_000
            )
            keys = self.ledger.start()
            for topic in (self.ledger.topic, self.topics.dead_letters):
                self._producer.partitions_for(topic)  # loads metadata now, so sends never block the loop
            self._consumer = KafkaConsumer(
                **config, group_id=self.settings.group, group_instance_id=self.settings.instance_id,
                enable_auto_commit=False,
                auto_offset_reset=self.settings.start_from, session_timeout_ms=session_ms,
                heartbeat_interval_ms=min(3_000, session_ms // 3), max_poll_records=500, **alert_fetching(),
            )  # fmt: skip
            partitions_of(self._consumer, self.topics.alerts)  # see pipeline.kafka_clients
            self._consumer.subscribe([self.topics.alerts], listener=self._rebalances)
        except (KafkaError, OSError, NotifierKafkaError) as exc:
            self._close_clients()
            if isinstance(exc, NotifierKafkaError):
                raise
            raise NotifierKafkaError(f"cannot reach Kafka at {self.kafka.bootstrap_servers}: {exc}") from exc
        return keys

    def _close_clients(self) -> None:
        if self._consumer is not None:
            self._consumer.close(autocommit=False)
            self._consumer = None
        self.ledger.stop()
        if self._producer is not None:
            self._producer.close(timeout=10)
            self._producer = None

    def _poll_blocking(self, pause: bool, known: frozenset[TopicPartition]) -> _Polled:
        consumer = self._consumer
        assert consumer is not None
        if pause:
            consumer.pause(*consumer.assignment())
        elif consumer.paused():
            consumer.resume(*consumer.paused())
        records = consumer.poll(timeout_ms=POLL_MS)
        rejoin_if_stranded(consumer)
        polled = _Polled(records, set(consumer.assignment()), {})
        fresh = polled.assignment - known
        if self._rebalances.take() or fresh:
            polled.ledger_keys = self.ledger.catch_up()  # another notifier may have delivered some
        for tp in fresh:
            with contextlib.suppress(KafkaError):  # revoked again meanwhile: the next poll tells
                polled.starts[tp] = consumer.position(tp)
        return polled

    async def _poll(self) -> None:
        owed = sum(len(o.owed) for o in self._outboxes)
        if owed >= self.settings.max_pending_alerts and not self._paused:
            log.warning("too many undelivered alerts: pausing the consumer", extra={"owed": owed})
        self._paused = owed >= self.settings.max_pending_alerts
        polled = await self._kafka(self._poll_blocking, self._paused, frozenset(self._book.partitions))
        # Partitions no longer ours are forgotten; the records of new ones count from their position, and
        # records this poll returned before it (a rebalance finishing mid-poll) are opened below, before
        # any commit, so they hold the offset back.
        gone = self._book.partitions - polled.assignment
        self._book.forget(gone)
        for tp, offset in polled.starts.items():
            self._book.start_at(tp, offset)
        self.ledger.remember(polled.ledger_keys)
        if gone or polled.starts:
            log.info("partitions changed", extra={"revoked": _names(gone), "assigned": _names(polled.starts)})
        now = self.clock()
        for tp, records in polled.records.items():
            for record in records:
                self._intake(tp, record, now)

    def _intake(self, tp: TopicPartition, record: Any, now: float) -> None:
        self.stats.records += 1
        token = self._book.open(tp, record.offset)
        source = record_source(tp.topic, tp.partition, record.offset)
        try:
            alerts = [output for output in decode_outputs(record.value) if isinstance(output, Alert)]
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            self._dead_letter(token, record.value, record.key, "undecodable", str(exc), source)
            alerts = []
        self.stats.alerts += len(alerts)
        self._book.hold(token, self._hand_out(alerts, token, source, now))
        self._book.release(token)

    def _hand_out(self, alerts: list[Alert], token: Token[TopicPartition], source: str, now: float) -> int:
        """A record's alerts to their destinations; returns how many deliveries wait on the record (its
        holds, taken at once: a backfill's record has a dozen alerts)."""
        holds = 0
        for alert in alerts:
            for outbox in self._outboxes:
                if not outbox.destination.route.matches(alert):
                    continue
                if self.ledger.delivered(outbox.name, alert.alert_id):
                    self.stats.already_delivered += 1
                    continue
                holds += 1
                owed = outbox.owed.get(alert.alert_id)
                if owed is not None:  # still on its way from an earlier read of the same alert
                    owed.tokens.append(token)
                    continue
                outbox.owed[alert.alert_id] = Owed(alert, [token], source)
                outbox.offer(alert, now)
        return holds

    async def _commit(self) -> None:
        offsets = self._book.committable()
        if not offsets or self._consumer is None:
            return
        consumer = self._consumer
        try:
            await self._kafka(
                consumer.commit, {tp: OffsetAndMetadata(o, "", -1) for tp, o in offsets.items()}
            )
        except KafkaError as exc:  # a rebalance in progress, the coordinator moving: the next commit retries
            log.warning("offset commit failed, retrying at the next interval", extra={"error": repr(exc)})
            return
        self._book.committed(offsets)

    # --- the destination side --------------------------------------------------------------------------

    async def settle(self, outbox: Outbox, notice: Message, outcome: Outcome, reason: str) -> None:
        """A notice was delivered (or refused for good): ledger first, then the offsets may move."""
        producer = self._producer
        assert producer is not None
        if isinstance(notice, HeldBackReport):
            await self._settle_report(producer, notice, outcome)
            return
        alerts = alerts_of(notice)
        try:
            await self.ledger.record(
                producer, outbox.name, [a.alert_id for a in alerts], outcome, int(time.time() * 1000)
            )
        except NotifierKafkaError as exc:
            self.stats.ledger_failures += 1
            log.warning("delivery not recorded in the ledger", extra={"error": str(exc)})
        if outcome == "delivered":
            self.stats.messages += 1
            self.stats.alerts_delivered += len(alerts)
            self.stats.digests += isinstance(notice, Digest)
        for alert in alerts:
            owed = outbox.owed.pop(alert.alert_id, None)
            if owed is None:
                continue
            if outcome != "delivered":
                self._dead_letter_refused(owed, f"{outbox.name}: {reason}")
            for token in owed.tokens:
                self._book.release(token)

    async def _settle_report(self, producer: KafkaProducer, report: HeldBackReport, outcome: Outcome) -> None:
        """Recorded whether posted or refused: a refused line is not tried again (nor by a restart)."""
        try:
            await self.ledger.record_report(producer, report, outcome, self.wall_ms())
        except NotifierKafkaError as exc:
            self.stats.ledger_failures += 1
            log.warning("held-back line not recorded in the ledger", extra={"error": str(exc)})
        if outcome == "delivered":
            self.stats.messages += 1
            self.stats.held_back_lines += 1
            log.info(
                "said how many alerts were held back",
                extra={"destination": report.destination, "held_back": report.count},
            )

    # --- alerts too old to post ------------------------------------------------------------------------

    async def _hold_back(self) -> None:
        """Settles what the outboxes set aside as too old: ledger first (so no restart posts them), then
        their offsets may move; each joins its destination's run for the line about them."""
        producer = self._producer
        assert producer is not None
        for outbox in self._outboxes:
            alerts = outbox.take_too_old()
            if not alerts:
                continue
            try:
                await self.ledger.record_held_back(producer, outbox.name, alerts, self.wall_ms())
            except NotifierKafkaError as exc:
                self.stats.ledger_failures += 1
                log.warning("held-back alerts not recorded in the ledger", extra={"error": str(exc)})
            if outbox.held_back.count == 0:
                log.info(
                    "holding back alerts too old to post",
                    extra={"destination": outbox.name, "max_alert_age_s": self.age_limit.max_age_s},
                )
            outbox.held_back.add_alerts(alerts, self.clock())
            self.stats.held_back += len(alerts)
            for alert in alerts:
                owed = outbox.owed.pop(alert.alert_id, None)
                for token in owed.tokens if owed is not None else ():
                    self._book.release(token)

    def _release_reports(self, now: float | None) -> None:
        for outbox in self._outboxes:
            outbox.release_report(now, self.settings.held_back_quiet_s)

    def _carry_unannounced(self) -> None:
        """What earlier notifiers held back and did not announce (the ledger says) joins this one's runs."""
        for outbox in self._outboxes:
            carried = self.ledger.unannounced.get(outbox.name)
            if carried is None:
                continue
            outbox.held_back.add(
                carried.count, carried.oldest_fired_ms, carried.newest_fired_ms, self.clock()
            )
            log.info(
                "alerts held back before a restart are still to be announced",
                extra={"destination": outbox.name, "held_back": carried.count},
            )

    def _dead_letter(
        self,
        token: Token[TopicPartition],
        value: bytes,
        key: bytes | None,
        code: str,
        reason: str,
        source: str,
    ) -> None:
        """Holds `token` until Kafka acknowledged the dead letter; a failure stops the notifier."""
        producer = self._producer
        assert producer is not None
        self.stats.dead_letters += 1
        self._book.hold(token)
        headers = dead_letter_headers(STAGE, code, reason, source)
        try:
            future = producer.send(self.topics.dead_letters, value=value, key=key, headers=headers)
        except KafkaError as exc:
            raise NotifierKafkaError(f"cannot write to the dead-letter topic: {exc!r}") from exc
        sent = acknowledged(asyncio.get_running_loop(), future)

        def done(future: asyncio.Future[None]) -> None:
            if future.exception() is not None:
                self._fatal = future.exception()
            else:
                self._book.release(token)

        sent.add_done_callback(done)

    def _dead_letter_refused(self, owed: Owed, reason: str) -> None:
        alert = owed.alert
        value, key = encode_outputs([alert]), community_key(alert).encode()
        # The newest token: older ones may belong to a partition assignment that is gone.
        self._dead_letter(owed.tokens[-1], value, key, "notify_refused", reason, owed.source)

    # --- shared ----------------------------------------------------------------------------------------

    async def _drain(self, workers: list[asyncio.Task[None]]) -> None:
        """Stop: release held digests and the lines about held-back alerts, give the backlogs
        `shutdown_timeout_s` to go out, stop the workers."""
        for outbox in self._outboxes:
            outbox.release_digests(None)
        deadline = self.clock() + self.settings.shutdown_timeout_s
        while True:
            await self._hold_back()
            self._release_reports(None)
            if all(o.idle for o in self._outboxes) or self.clock() >= deadline:
                break
            self._check(workers)
            await asyncio.sleep(0.05)
        for outbox in self._outboxes:
            outbox.stop()
        await asyncio.wait(workers, timeout=self.settings.request_timeout_s + 5)
        await self._hold_back()  # what the last sends set aside: recorded, so its offsets are committed
        left = {o.name: len(o.owed) for o in self._outboxes if o.owed}
        if left:
            log.warning("stopping with undelivered alerts, delivered after a restart", extra={"owed": left})
        unsaid = {o.name: o.held_back.count for o in self._outboxes if o.held_back.count}
        if unsaid:
            log.warning("stopping before saying how many alerts were held back: said after a restart",
                        extra={"held_back": unsaid})  # fmt: skip

    async def _settle_dead_letters(self) -> None:
        """Waits for Kafka's acknowledgement of the dead letters sent, so the last commit can pass them."""
        producer = self._producer
        if producer is not None:
            try:
                await self._kafka(producer.flush, 10)
            except KafkaError as exc:
                log.warning(
                    "dead letters not acknowledged, their alerts are read again", extra={"error": repr(exc)}
                )
            await asyncio.sleep(0)  # runs the acknowledgement callbacks queued by the flush

    def _check(self, workers: list[asyncio.Task[None]]) -> None:
        if self._fatal is not None:
            raise PipelineError(f"cannot write to the dead-letter topic: {self._fatal!r}") from self._fatal
        for task in workers:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise PipelineError(f"{task.get_name()} stopped: {task.exception()!r}") from task.exception()

    async def _kafka(self, func: Callable[..., R], *args: Any) -> R:
        """Every consumer call runs on the one Kafka thread, in order."""
        assert self._thread is not None
        return await asyncio.get_running_loop().run_in_executor(self._thread, func, *args)
