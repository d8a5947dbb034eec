"""The faust app: one thin agent that feeds each input message to its partition's `PartitionProcessor`
and carries out what comes back.

Guarantees (see docs/architecture.md): at-least-once with idempotent effects. The agent runs with
concurrency 1 (faust can commit past an in-flight message otherwise) and takes its messages in small
batches. All state of a partition lives in one changelogged table, written once per changed key per
batch, so the changelog is a prefix of the writes in order; the partition's counters are written last.
Offsets are committed by faust only after its producer is flushed, so everything a committed message
produced (outputs, changelog) is in Kafka. After a crash the uncommitted messages are read again: the
processor recognises what it already applied and re-emits the outputs that may have been lost. Each
message is admitted in offset order (`pipeline.stream.faust_fixes.input_cursors`), so one faust lost on the way is read
again instead of committed past. The producer is idempotent with acks=all (faust's default is acks=1
without idempotence).

Undecodable lines never reach faust's own error handling (which logs and commits them): the agent reads
raw bytes and dead-letters each bad line with the original bytes, its source and the reason.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import ssl
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import Any, cast

import faust
from aiokafka.errors import IllegalStateError, KafkaError
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.transport.drivers.aiokafka import Consumer as AIOKafkaConsumer
from faust.transport.drivers.aiokafka import Producer as AIOKafkaProducer
from faust.types import ConsumerT, Message, ProducerT

from pipeline.errors import RecoveryStalled
from pipeline.stream.faust_fixes.input_cursors import Admission, InputCursors, Passage
from pipeline.stream.faust_fixes.recovery_watch import RecoveryProgress, stalled_for
from pipeline.stream.partition import Effects, PartitionProcessor
from pipeline.stream.settings import ProcessorSettings
from schemas import KafkaSettings, Topics, dead_letter_headers
from schemas.outputs import encode_output_messages, encode_outputs

log = logging.getLogger(__name__)

SOURCE_TS_HEADER = "pulse.source.ts_ms"  # on outputs: record timestamp of the input message behind them


class _IdempotentProducer(AIOKafkaProducer):
    def _settings_extra(self) -> Mapping[str, Any]:
        return {"acks": "all", "enable_idempotence": True}

    async def send_records(
        self, topic: str, partition: int, records: list[tuple[bytes, bytes | None]]
    ) -> None:
        """Many records to one partition as few record batches: ~3 us a record against ~40 us through
        `Topic.send`. Delivery is awaited by faust's flush before each offset commit, like any send."""
        producer = self._ensure_producer()
        batch = producer.create_batch()
        for key, value in records:
            while batch.append(timestamp=None, key=key, value=value) is None:
                if batch.record_count() == 0:
                    raise ValueError(f"a state record of {len(value or b'')} bytes does not fit a batch")
                await producer.send_batch(batch, topic, partition=partition)
                batch = producer.create_batch()
        if batch.record_count():
            await producer.send_batch(batch, topic, partition=partition)


# An output message at most: well under the producer's request size and the broker's message size (1 MiB
# each). A batch of 64 backlog messages touched windows worth 1.4 MB (seen: the agent crashed on the send).
OUTPUT_MESSAGE_BYTES = 512 * 1024
FETCH_MAX_WAIT_MS = 100
STALL_CHECK_INTERVAL_S = 2.0  # how often partitions are checked for fetched messages lost on the way
RECOVERY_CHECK_INTERVAL_S = 5.0


class _BriefFetchThread(AIOKafkaConsumerThread):
    """faust fixes the consumer's `fetch_max_wait_ms` at 1500. aiokafka keeps one fetch in flight per
    broker, for the partitions that have nothing buffered; while the agent works through one partition's
    records, the fetch for the others waits at the broker until data comes or 1.5 s pass, and the busy
    partition cannot be fetched again meanwhile. Seen at the end of the end-to-end bench: the worker busy
    for 4.4 s, then fed a few messages every second for 2.5 s more. A short wait costs a few empty fetches
    a second when idle."""

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # read by its Fetcher, created on start()
        return consumer


class _ProcessedAckConsumer(AIOKafkaConsumer):
    """faust's consumer, corrected so that a worker processes every input message in order and never
    commits past one it did not process, whatever faust skipped around a rebalance.

    Admits each message through `InputCursors` (see there: a message after a hole is held, and the
    partition is read again from the hole) and commits no further than the cursor. faust's own drain loop
    counts a jump in offsets as a gap a commit may pass, and its check of where a commit starts lets one
    missing message through, or none at all when nothing was committed yet: each was seen losing comments
    after a kill -9 under load.

    Acks only messages an agent actually received (faust also acks messages it skips).

    Fetches a stream partition only once it has been sought to its committed offset. At the end of a
    recovery faust resumes the stream partitions and only then seeks them; a fetch in between delivers
    messages from wherever the partition stood (seen as a worker that never drained, in CI and with two
    workers). Resuming after the seek closes that window.

    Seeks a stream partition nobody committed yet back to its earliest offset: faust's seek to the
    committed offsets leaves such a partition where it stood (aiokafka seeks only to a committed offset
    above 0).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._awaiting_seek: set[Any] = set()  # stream partitions resumed by recovery, not yet sought
        self.cursors = InputCursors()
        self._batches_handed_out = self._batches_at_last_check = 0  # fetched batches, see rewind_stalled

    async def admit(self, message: Message) -> bool:
        """Whether the agent processes this message; after a hole, starts reading its partition again."""
        tp, offset = message.tp, message.offset
        admission = self.cursors.admit(tp, offset)
        if admission is Admission.REWIND:
            start = self.cursors.next_offset(tp)
            assert start is not None
            log.warning(
                "%s/%d: offsets %d to %d never reached the agent (faust dropped them): reading them again",
                tp.topic, tp.partition, start, offset - 1,
            )  # fmt: skip
            await self._seek_back(tp)
        return admission is Admission.PROCESS

    async def rewind_stalled(self) -> None:
        """Rewinds the partitions whose messages from the cursor on were fetched and lost, which no later
        message reveals (seen: a kill -9 run whose last 16 reposts never reached the agent).

        Only once a fetched batch was handed out in full since the last check: until then its records may
        still be on their way, untracked (the drain loop waits while the agent works through a backlog).
        With this, the rewinds still seen (of ticks, in a worker just started on a backlog) follow records
        faust's getmany took from aiokafka and never handed out: real losses, which its flow and
        generation checks can cause."""
        settled = self._batches_handed_out != self._batches_at_last_check
        self._batches_at_last_check = self._batches_handed_out
        in_flight = {message.tp for message in self._unacked_messages}
        for tp in self.assignment():
            start = self.cursors.stalled(tp, self._fetch_position(tp), not settled or tp in in_flight)
            if start is None:
                continue
            log.warning(
                "%s/%d: fetched from offset %d on, and none of it reached the agent: reading it again",
                tp.topic, tp.partition, start,
            )  # fmt: skip
            await self._seek_back(tp)

    def _fetch_position(self, tp: Any) -> int | None:
        """The next offset aiokafka fetches for the partition (read without waiting: aiokafka's own
        `position()` waits for a position being reset, on the thread that also fetches)."""
        subscription = self._thread._ensure_consumer()._subscription.subscription
        state = subscription and subscription.assignment and subscription.assignment.state_value(tp)
        return state.position if state is not None and state.has_valid_position else None

    async def _seek_back(self, tp: Any) -> None:
        """Reads the partition again from its cursor, or from where its log starts if the messages at the
        cursor were deleted meanwhile (a seek there would be reset to the log's start, whose records a
        rewind to the cursor drops: stuck for good)."""
        try:
            log_start = (await self.earliest_offsets(tp)).get(tp)
        except KafkaError as exc:
            log.warning("%s/%d: where its log starts is unknown (%s): reading it again from the cursor",
                        tp.topic, tp.partition, exc)  # fmt: skip
        else:
            if log_start is not None:
                await self._skip_deleted(tp, log_start)
        offset = self.cursors.next_offset(tp)
        if offset is None:
            return
        try:
            await self.seek_wait({tp: offset})  # on the consumer's thread, like its fetches
        except IllegalStateError:  # revoked meanwhile: its next owner reads from the committed offset
            self.cursors.forget(tp)

    async def _skip_deleted(self, tp: Any, log_start: int) -> bool:
        """Whether messages from the cursor on were deleted; if so the cursor moves up to `log_start`, and
        a commit may pass the deleted offsets once the messages after them are processed."""
        start = self.cursors.next_offset(tp)
        lost = self.cursors.skip_deleted(tp, log_start)
        if not lost:
            return False
        log.error(
            "%s/%d: offsets %d to %d were deleted before they were processed (retention, or deleted "
            "records): %d messages lost; going on from offset %d",
            tp.topic, tp.partition, start, log_start - 1, lost, log_start,
        )  # fmt: skip
        await super()._add_gap(tp, cast(int, start), log_start - 1)
        return True

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[Any, Message]]:
        async for tp, message in super().getmany(timeout):
            passage = self.cursors.passage(tp, message.offset)
            if passage is Passage.DROP:
                continue
            if passage is Passage.REREAD:
                # The drain loop drops what lies below its read offset, which records fetched before the
                # rewind's seek may have moved past.
                self._read_offset[tp] = message.offset
            yield tp, message
        self._batches_handed_out += 1  # each record delivered or dropped by now

    def _new_offset(self, tp: Any) -> int | None:
        return self.cursors.committable(tp, super()._new_offset(tp))

    async def _add_gap(self, tp: Any, offset_from: int, offset_to: int) -> None:
        """None: our topics have no gaps, so a jump is a loss, mended by a rewind. faust would count the
        offsets as committable, including ones read again and processed but whose batch is not settled."""

    def _new_consumer_thread(self) -> AIOKafkaConsumerThread:
        return _BriefFetchThread(self, loop=self.loop, beacon=self.beacon)

    def ack(self, message: Message) -> bool:
        if not message.tracked:
            return False
        return super().ack(message)

    def resume_partitions(self, tps: Iterable[Any]) -> None:
        wanted = set(tps)
        streams = {tp for tp in wanted if not self._is_changelog_tp(tp)}
        self._awaiting_seek |= streams
        super().resume_partitions(wanted - streams)

    async def perform_seek(self) -> None:
        await super().perform_seek()
        streams = [tp for tp in self.assignment() if not self._is_changelog_tp(tp)]
        log_starts = await self.earliest_offsets(*streams) if streams else {}
        # Partitions whose reading starts elsewhere than at the committed offset faust sought: nothing
        # committed yet, or the committed offset deleted since (`skipped`).
        moved: dict[Any, int] = {}
        skipped: dict[Any, int] = {}
        for tp in streams:
            committed, log_start = self._committed_offset[tp], log_starts.get(tp)
            if committed is not None:
                self.cursors.start(tp, committed)
                if log_start is not None and await self._skip_deleted(tp, log_start):
                    moved[tp] = skipped[tp] = log_start
            elif log_start is not None:
                self.cursors.start(tp, log_start)
                moved[tp] = log_start
        if moved:
            await self.seek_wait(moved)
        if skipped:
            # Nothing of these partitions is processed yet: their commit can move past the deleted
            # messages now (otherwise only once a message after them is processed), so that the lag and
            # the next start know they are gone.
            await self._commit_offsets(skipped)
        sought, self._awaiting_seek = self._awaiting_seek, set()
        super().resume_partitions(sought & set(self.assignment()))

    async def on_partitions_revoked(self, revoked: set[Any]) -> None:
        self._awaiting_seek -= set(revoked)
        for tp in revoked:
            self.cursors.forget(tp)
        await super().on_partitions_revoked(revoked)


class _PulseApp(faust.App):
    async def _on_agent_error(self, agent: Any, exc: BaseException) -> None:
        """An agent that raised stopped in the middle of a batch, whose windows and state were drained
        from the processors and maybe never sent. faust would commit and start a new actor that goes on
        with the next messages: outputs lost, the processors' memory ahead of their changelog (seen: an
        output message too large for the producer, every later window wrong). Instead the worker stops
        with the error, for its supervisor to start it again: it restores its state and re-reads from
        the last commit."""
        log.error("the agent failed: stopping this worker, to be started again", exc_info=exc)
        await self.crash(exc)

    def _create_directories(self) -> None:
        """None: the table lives in memory (and its changelog), so nothing is written to disk, and faust's
        `<app id>-data/v1/tables` directories would only pile up in the worker's working directory."""

    def _new_producer(self) -> ProducerT:
        return _IdempotentProducer(self.transport, loop=self.loop, beacon=self.beacon)

    def _new_consumer(self) -> ConsumerT:
        return _ProcessedAckConsumer(
            self.transport,
            callback=self.topics.on_message,
            on_partitions_revoked=self._on_partitions_revoked,
            on_partitions_assigned=self._on_partitions_assigned,
            beacon=self.beacon,
        )


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def build_app(
    settings: ProcessorSettings,
    kafka: KafkaSettings,
    topics: Topics,
    *,
    partitions: int,
    replication_factor: int,
    wall_clock: Callable[[], int] = wall_clock_ms,
) -> faust.App:
    """The processors' faust app; run it with `run_worker`. Input topics must have `partitions` partitions."""
    app = _PulseApp(
        settings.app_id,
        broker=[f"kafka://{server}" for server in kafka.bootstrap_servers.split(",")],
        broker_credentials=_credentials(kafka),
        store="memory://",
        processing_guarantee="at_least_once",
        producer_acks=-1,
        topic_partitions=partitions,
        topic_replication_factor=replication_factor,
        table_standby_replicas=settings.standby_replicas,
        broker_commit_interval=settings.commit_interval_s,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=min(3.0, settings.session_timeout_s / 3),
        consumer_auto_offset_reset="earliest",
        topic_disable_leader=True,
        web_enabled=False,
        producer_max_batch_size=1 << 20,  # state records of a message go out as one batch
        producer_max_request_size=1 << 20,
        key_serializer="raw",  # the table's changelog: our own msgpack bytes
        value_serializer="raw",
    )
    state = app.Table("state", partitions=partitions, key_type=bytes, value_type=bytes)
    raw: dict[str, Any] = {
        "key_type": bytes,
        "value_type": bytes,
        "key_serializer": "raw",
        "value_serializer": "raw",
    }
    source = app.topic(
        topics.likes, topics.comments, topics.reposts, topics.ticks, partitions=partitions, **raw
    )
    ticks = app.topic(topics.ticks, partitions=partitions, **raw)
    engagement = app.topic(topics.engagement, partitions=partitions, **raw)
    comment_sla = app.topic(topics.comment_sla, partitions=partitions, **raw)
    metrics = app.topic(topics.metrics, partitions=partitions, **raw)
    alerts = app.topic(topics.alerts, **raw)
    dead_letters = app.topic(topics.dead_letters, **raw)
    rules = settings.rules()
    producer = app.producer
    assert isinstance(producer, _IdempotentProducer)
    processors: dict[int, PartitionProcessor] = {}
    inputs = (topics.likes, topics.comments, topics.reposts)

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def forget(sender: Any, revoked: set[Any], **_: Any) -> None:
        for tp in revoked:
            processors.pop(tp.partition, None)

    async def carry_out(effects: Effects, message: Any) -> None:
        p = message.partition
        headers = [(SOURCE_TS_HEADER, str(int(message.timestamp * 1000)).encode())]
        if effects.windows or effects.rolling:
            for value in encode_output_messages([*effects.windows, *effects.rolling], OUTPUT_MESSAGE_BYTES):
                await engagement.send(value=value, partition=p, headers=headers)
        if effects.sla_records:
            for value in encode_output_messages(effects.sla_records, OUTPUT_MESSAGE_BYTES):
                await comment_sla.send(value=value, partition=p, headers=headers)
        for alert in effects.alerts:
            key = f"{alert.platform}:{alert.community_id}".encode()
            await alerts.send(key=key, value=encode_outputs([alert]), headers=headers)
        if effects.stats is not None:
            await metrics.send(value=encode_outputs([effects.stats]), partition=p)
        source = f"{message.topic}/{p}/{message.offset}"
        for rejected in effects.rejected:
            await dead_letters.send(
                key=message.key,
                value=rejected.raw,
                headers=dead_letter_headers("processor", "invalid_event", str(rejected.error), source),
            )
        # State goes straight to the changelog partition of its input partition, and into the table's
        # local store for a later restore. (Table.__setitem__ would route each write through faust's
        # bounded send buffer, which stalls the agent at our write rates, and picks the changelog
        # partition from the current event, which is the same here but implicit.)
        if not effects.state:
            return
        store = state.data
        for key, entry in effects.state.items():
            if entry is None:
                store.pop(key, None)
            else:
                store[key] = entry
        await producer.send_records(state.changelog_topic.get_topic_name(), p, list(effects.state.items()))

    @app.agent(source, concurrency=1)
    async def process(stream: Any) -> None:
        consumer = consumer_of(app)
        # A batch: up to `batch_messages` messages, or what came within `batch_wait_s`. faust acks its
        # messages only after this body is done with it, so after their settled state was sent.
        async for batch in stream.take_events(settings.batch_messages, within=settings.batch_wait_s):
            first: dict[int, Any] = {}  # partition -> the batch's first message there
            for event in batch:
                message = event.message
                if not await consumer.admit(message):
                    continue
                processor = processors.get(message.partition)
                if processor is None:
                    processor = PartitionProcessor(message.partition, rules)
                    restored = processor.restore(state.items(), inputs)
                    processors[message.partition] = processor
                    log.info("partition %d: resumed with %d state entries", message.partition, restored)
                if message.topic == topics.ticks:
                    end_of_input = _end_of_input(message.value)
                    effects = processor.tick(
                        message.topic, message.offset, wall_clock(), end_of_input, inputs
                    )
                else:
                    effects = processor.process(message.topic, message.offset, message.value, wall_clock())
                await carry_out(effects, message)
                first.setdefault(message.partition, message)
            for partition, message in first.items():
                settling = processors.get(partition)
                if settling is not None:  # else revoked meanwhile: the new owner reads these messages again
                    await carry_out(settling.settle(), message)

    @app.timer(interval=settings.tick_interval_s)  # type: ignore[untyped-decorator]
    async def beat() -> None:
        """The wall clock, as a message per owned partition, so the agent (which alone may change the
        table) can fire alerts for posts that went quiet."""
        for tp in app.consumer.assignment():
            if tp.topic == topics.ticks:
                await ticks.send(value=b"", partition=tp.partition)

    @app.timer(interval=STALL_CHECK_INTERVAL_S)  # type: ignore[untyped-decorator]
    async def rewind_stalled() -> None:
        await consumer_of(app).rewind_stalled()

    @app.timer(interval=settings.progress_log_interval_s)  # type: ignore[untyped-decorator]
    async def progress() -> None:
        """Per input partition: the next offset to process and the offset committed, so a stall shows."""
        consumer = consumer_of(app)
        committed, read = consumer._committed_offset, consumer._read_offset  # faust keeps no public view
        inputs = {topics.likes, topics.comments, topics.reposts}
        parts = [
            f"{tp.topic}/{tp.partition} next {_or_dash(consumer.cursors.next_offset(tp))} "
            f"committed {committed.get(tp, '-')} read {read.get(tp, '-')} end {consumer.highwater(tp)}"
            for tp in sorted(consumer.assignment())
            if tp.topic in inputs
        ]
        log.info(
            "progress: %s; %d messages in flight%s",
            "; ".join(parts) or "no input partitions", len(consumer.unacked), _not_fetched(consumer, inputs),
        )  # fmt: skip

    return app


def consumer_of(app: faust.types.AppT) -> _ProcessedAckConsumer:
    consumer = app.consumer
    assert isinstance(consumer, _ProcessedAckConsumer)
    return consumer


def _or_dash(value: int | None) -> str:
    return "-" if value is None else str(value)


def _not_fetched(consumer: Any, topics: set[str]) -> str:
    """The assigned input partitions faust does not fetch, and why: what a worker that sits idle with
    messages waiting shows (seen once under load after a takeover; cause not known yet)."""
    active = consumer._active_partitions or set()  # faust keeps no public view of these
    reasons = {
        "paused": consumer._paused_partitions,
        "buffer full": consumer._buffered_partitions,
        "awaiting its seek": consumer._awaiting_seek,
    }
    idle = [
        f"{tp.topic}/{tp.partition} ({', '.join(r for r, tps in reasons.items() if tp in tps) or 'not active'})"
        for tp in sorted(consumer.assignment())
        if tp.topic in topics and tp not in active
    ]
    return f"; not fetched: {'; '.join(idle)}" if idle else ""


def end_of_input_tick(event_ms: int) -> bytes:
    """The value of a tick that tells every partition the newest event time of a bounded input."""
    return str(event_ms).encode()


def _end_of_input(value: bytes | None) -> int | None:
    if not value:
        return None  # a plain beat of the wall clock
    try:
        return int(value)
    except ValueError:
        log.warning("ignoring a tick with an unreadable end-of-input time: %r", value[:40])
        return None


class _Worker(faust.Worker):
    """faust's worker without its terminal spinner, and with a watch on its table recovery.

    The spinner: to spin on every log record, faust sets the root logger to DEBUG whenever the level asked
    for is WARNING or above, so every debug call of faust and aiokafka built a record (faust's recovery
    logs two per changelog record): seen as most of a standby worker's CPU, and a few percent of an
    active one's.

    The watch (see `pipeline.stream.faust_fixes.recovery_watch`) runs from the worker's start, as a recovery blocks faust's
    own timers until it completes."""

    def __init__(self, app: faust.App, *args: Any, recovery_stall_s: float, **kwargs: Any) -> None:
        super().__init__(app, *args, **kwargs)
        self.spinner = None
        self.recovery_stall_s = recovery_stall_s

    async def on_first_start(self) -> None:
        await super().on_first_start()
        self.add_future(self._watch_recovery())

    async def _watch_recovery(self) -> None:
        while not self.should_stop:
            await asyncio.sleep(RECOVERY_CHECK_INTERVAL_S)
            try:
                stalled, stats = self._recovery_stall()
                if stalled < self.recovery_stall_s:
                    continue
                consumer = consumer_of(self.app)
                left = "; ".join(_recovery_state(consumer, tp, stat) for tp, stat in sorted(stats.items()))
            except Exception:  # it reads faust's internals: a change there must not stop the worker
                log.exception("the recovery watch could not read the recovery's state")
                continue
            log.error(
                "state recovery received no changelog record for %.0f s with records left to read (%s): "
                "stopping this worker, to be started again (PULSE_PROCESSOR__RECOVERY_STALL_S)",
                stalled, left,
            )  # fmt: skip
            await self.app.crash(RecoveryStalled(f"no changelog record for {stalled:.0f} s ({left})"))
            return

    def _recovery_stall(self) -> tuple[float, Mapping[Any, Any]]:
        """Seconds the recovery has gone without progress, and faust's figures per changelog partition."""
        recovery = self.app.tables.recovery  # type: ignore[attr-defined]  # not in TableManagerT
        stats = recovery.active_stats()
        progress = RecoveryProgress(
            recovering=recovery.in_recovery,
            started_at=recovery._recovery_started_at,  # faust keeps no public view of these
            remaining={tp: stat.remaining for tp, stat in stats.items()},
            received_at=recovery._active_events_received_at.values(),
        )
        return stalled_for(progress, time.monotonic()), stats


def _recovery_state(consumer: _ProcessedAckConsumer, tp: Any, stat: Any) -> str:
    """Where a changelog partition's recovery stands, for the log: what tells records fetched and lost
    (fetch position past the last record applied) from records never fetched (position right after it;
    paused or not active)."""
    if tp in consumer._paused_partitions:  # faust keeps no public view of these sets
        fetching = "paused"
    elif tp in (consumer._active_partitions or set()):
        fetching = "fetched"
    else:
        fetching = "not fetched"
    return (
        f"{tp.topic}/{tp.partition}: applied up to {stat.offset} of {stat.highwater}, {stat.remaining} left, "
        f"fetch position {_or_dash(consumer._fetch_position(tp))}, {fetching}"
    )


def run_worker(app: faust.App, log_level: str, recovery_stall_s: float) -> None:
    """Runs a worker until SIGTERM/SIGINT (then commits and stops cleanly), or until its state recovery
    stalls (then it exits with an error, for its supervisor to start it again).

    What exists by now (modules, faust, the app) lives as long as the process: frozen out of the cycle
    collector's reach, so its full collections walk only what processing keeps (windows, clocks)."""
    worker = _Worker(app, loglevel=log_level, quiet=True, recovery_stall_s=recovery_stall_s)
    gc.collect()
    gc.freeze()
    worker.execute_from_commandline()


def _credentials(kafka: KafkaSettings) -> faust.SASLCredentials | faust.SSLCredentials | None:
    if kafka.security_protocol == "PLAINTEXT":
        return None
    context = None
    if kafka.security_protocol.endswith("SSL"):
        context = ssl.create_default_context(cafile=kafka.ssl_cafile)
    if kafka.sasl_mechanism:
        password = kafka.sasl_password.get_secret_value() if kafka.sasl_password else None
        return faust.SASLCredentials(
            username=kafka.sasl_username,
            password=password,
            mechanism=kafka.sasl_mechanism,
            ssl_context=context,
        )
    return faust.SSLCredentials(context)
