"""The warehouse loader: every table's `TableSink`, side by side in one process, over one ClickHouse client.

One process because the embedded engine lets one process open its store (the loader is that process, and
answers queries for the others through `QueryService`); one thread and one consumer group per table so a
slow or failing table holds back only its own offsets. Each sink commits its offsets only after its
inserts succeeded (see `pipeline.sink`).

The client is shared: chDB runs one statement at a time anyway, and the HTTP driver's session must not
see two statements at once, so every call goes through one lock (`SerializedClient`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import KafkaError

from pipeline.errors import PipelineError
from pipeline.sink import SinkSettings, SinkStats, TableSink, TableSpec
from schemas import KafkaSettings

log = logging.getLogger(__name__)


class SerializedClient:
    """A clickhouse-connect client whose calls take turns."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.lock = threading.Lock()

    def insert(self, *args: Any, **kwargs: Any) -> Any:
        with self.lock:
            return self.client.insert(*args, **kwargs)

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
    """Runs one `TableSink` per route in its own thread until `stop()`; `group` prefixes the consumer
    groups (`<group>.<table>`). Dead letters go to `dead_letter_topic`, each delivery awaited."""

    def __init__(
        self,
        kafka: KafkaSettings,
        routes: list[Route],
        client: SerializedClient,
        dead_letter_topic: str,
        group: str,
        settings: SinkSettings | None = None,
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
        self._threads: list[threading.Thread] = []
        self._producer: KafkaProducer | None = None

    def start(self) -> WarehouseLoader:
        try:
            self._producer = KafkaProducer(**self.kafka.client_config(), acks="all", linger_ms=5)
            for route in self.routes:
                consumer = KafkaConsumer(
                    *route.topics,
                    **self.kafka.client_config(),
                    group_id=f"{self.group}.{route.spec.table}",
                    enable_auto_commit=False,
                    auto_offset_reset="earliest",
                    max_poll_records=self.settings.batch_rows,
                )
                self.sinks[route.spec.table] = TableSink(
                    route.spec, consumer, self.client, self._dead_letter, self.settings
                )
        except KafkaError as exc:
            self.stop()
            raise PipelineError(
                f"the loader cannot reach Kafka at {self.kafka.bootstrap_servers}: {exc}"
            ) from exc
        for table, sink in self.sinks.items():
            thread = threading.Thread(target=self._run, args=(table, sink), name=f"sink-{table}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self, timeout_s: float = 60.0) -> None:
        """Flushes every batch (insert, then commit) and closes the consumers."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout_s)
        for sink in self.sinks.values():
            sink.consumer.close(autocommit=False)
        if self._producer is not None:
            self._producer.flush(timeout=30)
            self._producer.close(timeout=30)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

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

    def _run(self, table: str, sink: TableSink) -> None:
        try:
            sink.run(self._stop.is_set)
        except BaseException as exc:  # a table that cannot go on must stop the loader, not die silently
            log.exception("sink for %s stopped", table)
            self.failures[table] = exc
            self._stop.set()

    def _dead_letter(self, value: bytes, key: bytes | None, headers: list[tuple[str, bytes]]) -> None:
        assert self._producer is not None
        self._producer.send(self.dead_letter_topic, value=value, key=key, headers=headers).get(timeout=60)
