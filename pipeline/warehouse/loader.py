"""The warehouse loader: every table's `TableSink` in one process and one thread, fed by one consumer.

One process because the embedded engine lets one process open its store (the loader is that process, and
answers queries for the others through `QueryService`). One consumer in one group reads every table's
topics and hands each partition's records to its table; each topic feeds exactly one table, so each
table commits the offsets of its own partitions, and only after its inserts succeeded (see
`pipeline.warehouse.table_sink`).

Why one of each: chDB runs one statement at a time and holds the GIL while it does, so a thread per table
bought nothing, and a busy table's thread starved the others of the client's lock (seen: `alerts` and
`comment_sla` got no insert during 30 s of live traffic); and several kafka-python consumers polled in
turn from one thread were seen to sit assigned but fetch nothing. The query service has a connection of
its own (a reader, see `query_service`), never this one: a statement an analyst sent on a shared
connection once left its session read-only, and every insert after it failed. While ClickHouse is away,
the table retrying its batch holds the thread: every table waits for the same server anyway.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError

from pipeline.errors import PipelineError, SinkStopped, WarehouseError
from pipeline.kafka_clients import known_partitions, rejoin_if_stranded, until_available
from pipeline.warehouse.source_watch import SourceWatch
from pipeline.warehouse.table_sink import SinkSettings, SinkStats, TableSink, TableSpec
from schemas import KafkaSettings
from schemas.outputs import encode_outputs

log = logging.getLogger(__name__)

FETCH_MIN_BYTES = 256 * 1024
FETCH_MAX_WAIT_MS = 100


class SerializedClient:
    """A clickhouse-connect client whose calls take turns."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.lock = threading.Lock()

    def raw_insert(self, *args: Any, **kwargs: Any) -> Any:
        with self.lock:
            return self.client.raw_insert(*args, **kwargs)

    def query(self, *args: Any, **kwargs: Any) -> Any:
        with self.lock:
            return self.client.query(*args, **kwargs)

    def command(self, *args: Any, **kwargs: Any) -> Any:
        with self.lock:
            return self.client.command(*args, **kwargs)


@dataclass(frozen=True, slots=True)
class Route:
    spec: TableSpec
    topics: tuple[str, ...]


class WarehouseLoader:
    """Runs one `TableSink` per route until `stop()`, all fed by one consumer in `group`. Dead letters go
    to `dead_letter_topic`, each delivery awaited."""

    def __init__(
        self,
        kafka: KafkaSettings,
        routes: list[Route],
        client: SerializedClient,
        dead_letter_topic: str,
        group: str,
        settings: SinkSettings | None = None,
        source_watch: tuple[SourceWatch, str] | None = None,
    ) -> None:
        self.kafka = kafka
        self.routes = routes
        self.client = client
        self.dead_letter_topic = dead_letter_topic
        self.group = group
        self.settings = settings or SinkSettings()
        self.sinks: dict[str, TableSink] = {}
        self.failures: dict[str, BaseException] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._producer: KafkaProducer | None = None
        self.poll_timeout_ms = 200
        self.topic_wait_s = 60.0
        self._consumer: KafkaConsumer | None = None
        self._table_of: dict[str, TableSink] = {}  # topic -> the sink of its table
        # The quiet-source watch and the alerts topic: it runs in the loader holding that topic's partition 0.
        self._watch: SourceWatch | None = source_watch[0] if source_watch else None
        self._watch_tp: TopicPartition | None = TopicPartition(source_watch[1], 0) if source_watch else None

    def start(self) -> WarehouseLoader:
        """Opens the clients (tried again on retriable errors, a broker of the cluster down, for
        `kafka.start_retry_s`: see pipeline.kafka_clients) and starts loading on a thread of its own."""
        topics = [topic for route in self.routes for topic in route.topics]
        if len(set(topics)) != len(topics):
            raise PipelineError(f"a topic feeds two tables: {topics}")
        consumer = until_available(lambda: self._open_clients(topics), "the loader is starting",
                                   self.kafka.start_retry_s)  # fmt: skip
        for route in self.routes:
            sink = TableSink(
                route.spec, consumer, self.client, self._dead_letter, self.settings,
                should_stop=self._stop.is_set,
            )  # fmt: skip
            self.sinks[route.spec.table] = sink
            self._table_of.update(dict.fromkeys(route.topics, sink))
        self._thread = threading.Thread(target=self._run, name="loader", daemon=True)
        self._thread.start()
        return self

    def _open_clients(self, topics: list[str]) -> KafkaConsumer:
        try:
            self._producer = KafkaProducer(**self.kafka.client_config(), acks="all", linger_ms=5)
            self._consumer = KafkaConsumer(
                **self.kafka.client_config(),
                group_id=self.group,
                group_instance_id=self.settings.instance_id,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                max_poll_records=2_000,  # messages: each may hold hundreds of rows
                # Rows wait up to `flush_interval_s` for their insert anyway, so a fetch may wait for a
                # quarter of a megabyte (or 100 ms): fewer, fuller fetches than one per message as it
                # arrives, for the loader and the broker (about 6% of the loader's CPU in `pulse bench`).
                fetch_min_bytes=FETCH_MIN_BYTES,
                fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
            )
            missing = [t for t in topics if not known_partitions(self._consumer, t, self.topic_wait_s)]
            if missing:
                raise PipelineError(
                    f"the loader's topics do not exist (create them with `pulse topics`): {missing}"
                )
            self._consumer.subscribe(topics)  # only now: see pipeline.kafka_clients
            return self._consumer
        except (KafkaError, PipelineError) as exc:
            self._close_clients()
            if isinstance(exc, PipelineError):
                raise
            raise PipelineError(
                f"the loader cannot reach Kafka at {self.kafka.bootstrap_servers}: {exc}"
            ) from exc

    def stop(self, timeout_s: float = 60.0) -> None:
        """Flushes every batch (insert, then commit) and closes the consumer."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        self._close_clients()

    def _close_clients(self) -> None:
        if self._consumer is not None:
            self._consumer.close(autocommit=False)
            self._consumer = None
        if self._producer is not None:
            self._producer.flush(timeout=30)
            self._producer.close(timeout=30)
            self._producer = None

    def stats(self) -> dict[str, SinkStats]:
        return {table: sink.stats for table, sink in self.sinks.items()}

    def run_until(self, should_stop: Callable[[], bool], interval_s: float = 0.2) -> None:
        """Blocks until `should_stop()` or a sink failure, then stops; re-raises the first failure."""
        while not should_stop() and not self._stop.is_set():
            self._stop.wait(interval_s)
        self.stop()
        if self.failures:
            table, exc = next(iter(self.failures.items()))
            raise PipelineError(f"the sink for {table} failed: {exc}") from exc

    def _run(self) -> None:
        sink: TableSink | None = None
        consumer = self._consumer
        assert consumer is not None
        progress = _Progress(self.settings.progress_log_interval_s)
        try:
            while not self._stop.is_set():
                started = time.monotonic()
                polled = consumer.poll(timeout_ms=self.poll_timeout_ms)
                rejoin_if_stranded(consumer)
                progress.polled(started, bool(polled))
                started = time.monotonic()
                for tp, records in polled.items():
                    sink = self._table_of[tp.topic]
                    sink.take(tp, records)
                for sink in self.sinks.values():
                    sink.flush_if_due(quiet=not polled)
                self._watch_sources(consumer)
                progress.worked(started)
                if progress.due():
                    progress.log(len(consumer.assignment()), self.sinks)
            for sink in self.sinks.values():
                sink.flush()
        except SinkStopped as exc:  # not a failure: the batch is read again on the next start
            log.warning("%s", exc)
        except BaseException as exc:  # a table that cannot go on must stop the loader, not die silently
            table = sink.spec.table if sink is not None else "?"
            log.exception("sink for %s stopped", table)
            self.failures[table] = exc
            self._stop.set()

    def _watch_sources(self, consumer: KafkaConsumer) -> None:
        watch = self._watch
        if watch is None or not watch.due(time.monotonic()):
            return
        if self._watch_tp not in consumer.assignment():
            watch.forget()
            return
        try:
            alerts = watch.check(time.time_ns() // 1_000_000, time.monotonic())
        except WarehouseError as exc:  # ClickHouse busy or away: the next check tries again
            log.warning("source watch: %s", exc)
            return
        assert self._producer is not None and self._watch_tp is not None
        for alert in alerts:
            log.warning("source watch: %s %s:%s", alert.kind.value, alert.platform, alert.community_id)
            key = f"{alert.platform}:{alert.community_id}".encode()
            self._producer.send(self._watch_tp.topic, key=key, value=encode_outputs([alert])).get(timeout=60)

    def _dead_letter(self, value: bytes, key: bytes | None, headers: list[tuple[str, bytes]]) -> None:
        assert self._producer is not None
        self._producer.send(self.dead_letter_topic, value=value, key=key, headers=headers).get(timeout=60)


class _Progress:
    """What the loader logs every `interval_s`: enough to tell a loader that stalls in a poll, in an insert
    or in a commit from one that has nothing assigned or nothing to read."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._logged_at = self._records_at = time.monotonic()
        self._slowest_poll_s = self._slowest_work_s = 0.0

    def polled(self, started: float, got_records: bool) -> None:
        now = time.monotonic()
        self._slowest_poll_s = max(self._slowest_poll_s, now - started)
        if got_records:
            self._records_at = now

    def worked(self, started: float) -> None:
        self._slowest_work_s = max(self._slowest_work_s, time.monotonic() - started)

    def due(self) -> bool:
        return time.monotonic() - self._logged_at >= self.interval_s

    def log(self, assigned: int, sinks: dict[str, TableSink]) -> None:
        now = time.monotonic()
        tables = "; ".join(
            f"{table} {sink.stats.rows_written} rows in {sink.stats.batches} inserts, {sink.pending_rows} pending"
            + (
                f", {sink.uncommitted_partitions} partitions awaiting a commit"
                if sink.uncommitted_partitions
                else ""
            )
            for table, sink in sinks.items()
        )
        log.info(
            "progress: %d partitions assigned; %s; last records %.1f s ago; slowest poll %.2f s, "
            "slowest insert and commit %.2f s",
            assigned, tables, now - self._records_at, self._slowest_poll_s, self._slowest_work_s,
        )  # fmt: skip
        self._logged_at = now
        self._slowest_poll_s = self._slowest_work_s = 0.0
