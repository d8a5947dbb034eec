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

import logging
import ssl
import time
from collections.abc import Callable
from typing import Any

import faust

from pipeline.stream.faust_fixes import (
    IdempotentProducer,
    PulseApp,
    PulseWorker,
    QuickTableManager,
    StateTable,
    consumer_of,
    not_fetched,
    or_dash,
    run_worker,
)
from pipeline.stream.partition import Effects, PartitionProcessor
from pipeline.stream.settings import ProcessorSettings
from schemas import MAX_CLOCK_SKEW_S, KafkaSettings, Topics, dead_letter_headers, durability_configs
from schemas.outputs import Alert, encode_output_messages, encode_outputs
from schemas.wire import SOURCE_TS_HEADER, Erasure, partition_of, read_erasure, read_tick, record_source

log = logging.getLogger(__name__)

__all__ = ["PulseWorker", "build_app", "run_worker", "wall_clock_ms"]

# An output message at most: well under the producer's request size and the broker's message size (1 MiB
# each). A batch of 64 backlog messages touched windows worth 1.4 MB (seen: the agent crashed on the send).
OUTPUT_MESSAGE_BYTES = 512 * 1024
STALL_CHECK_INTERVAL_S = 2.0
CHANGELOG_MAX_COMPACTION_LAG_MS = (
    86_400_000  # how often partitions are checked for fetched messages lost on the way
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
    max_clock_skew_s: float = MAX_CLOCK_SKEW_S,
) -> faust.App:
    """The processors' faust app; run it with `run_worker`. Input topics must have `partitions` partitions.
    Events stamped more than `max_clock_skew_s` ahead of `wall_clock` are dead-lettered."""
    app = PulseApp(
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
        consumer_group_instance_id=settings.group_instance_id,
        topic_disable_leader=True,
        web_enabled=False,
        producer_max_batch_size=1 << 20,  # state records of a message go out as one batch
        producer_max_request_size=1 << 20,
        TableManager=QuickTableManager,
        key_serializer="raw",  # the table's changelog: our own msgpack bytes
        value_serializer="raw",
    )
    app.delivery_stall_s = settings.delivery_stall_s
    # Compacted, and compacted within a day of a value being replaced: `pulse erase` saves a person's
    # windows and clocks again without them, and only compaction removes the older values from the log.
    # Restored in bulk when a worker gains a partition (faust_fixes.state_table), not record by record.
    # With three replicas or more, two in sync for a write, as every topic we create.
    state = StateTable(
        app, name="state", beacon=app.tables.beacon, partitions=partitions, key_type=bytes, value_type=bytes,
        extra_topic_configs={
            "max.compaction.lag.ms": str(CHANGELOG_MAX_COMPACTION_LAG_MS), **durability_configs(replication_factor),
        },
        client_config=kafka.aiokafka_config(), inputs=topics.processor_inputs,
    )  # fmt: skip
    app.tables.add(state)
    raw: dict[str, Any] = {
        "key_type": bytes,
        "value_type": bytes,
        "key_serializer": "raw",
        "value_serializer": "raw",
    }
    inputs = topics.processor_inputs
    source = app.topic(*inputs, topics.ticks, partitions=partitions, **raw)
    ticks = app.topic(topics.ticks, partitions=partitions, **raw)
    engagement = app.topic(topics.engagement, partitions=partitions, **raw)
    comment_sla = app.topic(topics.comment_sla, partitions=partitions, **raw)
    metrics = app.topic(topics.metrics, partitions=partitions, **raw)
    dead_letters = app.topic(topics.dead_letters, **raw)
    rules = settings.rules(max_clock_skew_s)
    producer = app.producer
    assert isinstance(producer, IdempotentProducer)
    processors: dict[int, PartitionProcessor] = {}

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def forget(sender: Any, revoked: set[Any], **_: Any) -> None:
        for tp in revoked:
            processors.pop(tp.partition, None)

    alert_partitions: list[int] = []  # the alerts topic's partition count, once known

    async def send_alerts(batch: list[Alert], headers: list[tuple[str, bytes]]) -> None:
        """A community's alerts from one input message as one record keyed by the community (NDJSON lines,
        as every output topic carries), in the partition Kafka's default partitioner picks for the key
        (`schemas.wire.partition_of`, as faust's sends did), sent in bulk. A backfill raises an alert for
        every third event: one `Topic.send` each (~40 us) took a fifth of the worker's CPU and a produce
        request apiece at the broker, and one record each cost the loader ~10 us to unpack (measured)."""
        if not alert_partitions:
            alert_partitions.append(await producer.partition_count(topics.alerts))
        by_key: dict[bytes, list[Alert]] = {}
        for alert in batch:
            by_key.setdefault(f"{alert.platform}:{alert.community_id}".encode(), []).append(alert)
        by_partition: dict[int, list[tuple[bytes, bytes | None]]] = {}
        for key, alerts in by_key.items():
            partition = partition_of(key, alert_partitions[0])
            for value in encode_output_messages(alerts, OUTPUT_MESSAGE_BYTES):
                by_partition.setdefault(partition, []).append((key, value))
        for partition, records in by_partition.items():
            await producer.send_records(topics.alerts, partition, records, headers)

    async def carry_out(effects: Effects, message: Any) -> None:
        p = message.partition
        headers = [(SOURCE_TS_HEADER, str(int(message.timestamp * 1000)).encode())]
        if effects.windows or effects.rolling:
            for value in encode_output_messages([*effects.windows, *effects.rolling], OUTPUT_MESSAGE_BYTES):
                await engagement.send(value=value, partition=p, headers=headers)
        if effects.sla_records:
            for value in encode_output_messages(effects.sla_records, OUTPUT_MESSAGE_BYTES):
                await comment_sla.send(value=value, partition=p, headers=headers)
        if effects.alerts:
            await send_alerts(effects.alerts, headers)
        if effects.stats is not None:
            await metrics.send(value=encode_outputs([effects.stats]), partition=p)
        source = record_source(message.topic, p, message.offset)
        for rejected in effects.rejected:
            await dead_letters.send(
                key=message.key,
                value=rejected.raw,
                headers=dead_letter_headers("processor", rejected.error.code, str(rejected.error), source),
            )
        # State goes straight to the changelog partition of its input partition, and into the table's
        # local store for a later restore. (Table.__setitem__ would route each write through faust's
        # bounded send buffer, which stalls the agent at our write rates, and picks the changelog
        # partition from the current event, which is the same here but implicit.)
        if not effects.state:
            return
        store = state.data.data  # the memory store's own dict (its __setitem__ is a Python call per key)
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
                    restored = processor.restore(state.items(), inputs, wall_clock())
                    processors[message.partition] = processor
                    log.info("partition %d: resumed with %d state entries", message.partition, restored)
                if message.topic == topics.ticks and (erasure := _erasure(message.value)) is not None:
                    effects = processor.erase(
                        message.topic, message.offset, erasure.platform, erasure.user_id
                    )
                elif message.topic == topics.ticks:
                    end_of_input = _end_of_input(message.value)
                    unread = consumer.unread_topics(inputs, message.partition)
                    effects = processor.tick(
                        message.topic, message.offset, wall_clock(), end_of_input, inputs, unread
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
        parts = [
            f"{tp.topic}/{tp.partition} next {or_dash(consumer.cursors.next_offset(tp))} "
            f"committed {committed.get(tp, '-')} read {read.get(tp, '-')} end {consumer.highwater(tp)}"
            for tp in sorted(consumer.assignment())
            if tp.topic in inputs
        ]
        log.info(
            "progress: %s; %d messages in flight%s",
            "; ".join(parts) or "no input partitions", len(consumer.unacked), not_fetched(consumer, set(inputs)),
        )  # fmt: skip

    return app


def _erasure(value: bytes | None) -> Erasure | None:
    try:
        return read_erasure(value)
    except ValueError:
        log.warning("ignoring an erasure tick that names nobody: %r", (value or b"")[:80])
        return None


def _end_of_input(value: bytes | None) -> int | None:
    try:
        return read_tick(value)
    except ValueError:
        assert value is not None
        log.warning("ignoring a tick with an unreadable end-of-input time: %r", value[:40])
        return None


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
