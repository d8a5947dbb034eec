"""Ingest benchmark: events/s and MB/s into the real broker, batched against one event per message.

Each run writes into fresh, prefixed topics that are deleted afterwards, so runs do not disturb each
other or a pipeline on the same cluster. The input file is generated once by the simulator (untimed) and
reused. The baseline (one event per message) runs in the same invocation, on the same machine and data.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from agents import EventPublisher, PublisherSettings, Simulator, SimulatorSettings, replay
from pulse.topics import ensure_topics
from schemas import KafkaSettings, Topics, encode_event


@dataclass(frozen=True, slots=True)
class IngestResult:
    path: str
    batch_events: int
    events: int
    messages: int
    megabytes: float
    seconds: float
    cpu_s: float  # CPU of this process meanwhile, the producer's network thread included

    @property
    def cpu_us_per_event(self) -> float:
        """What the ingest path costs the machine an event: on a shared or busy machine, the figure that
        compares; events/s follow from it only while a core is free."""
        return self.cpu_s / self.events * 1e6

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds

    @property
    def mb_per_s(self) -> float:
        return self.megabytes / self.seconds


def bench_file(state_dir: Path, events: int, seed: int) -> Path:
    path = state_dir / "bench" / f"events-{events}-seed{seed}.ndjson"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        with partial.open("wb") as out:
            for event in Simulator(SimulatorSettings(communities=50, seed=seed, events_per_sim_s=500)).events(
                count=events
            ):
                out.write(encode_event(event) + b"\n")
        partial.rename(path)
    return path


def run_replay(
    kafka: KafkaSettings, path: Path, batch_events: int, limit: int | None, partitions: int
) -> IngestResult:
    """`pulse replay` of the file, or of its first `limit` lines (read one by one, not as a file is)."""
    with BenchTopics(kafka, f"replay{batch_events}", partitions) as topics:
        settings = PublisherSettings(batch_events=batch_events)
        with path.open("rb") as stream, EventPublisher(kafka, settings, topics) as publisher:
            lines = stream if limit is None else itertools.islice(stream, limit)
            cpu_started = time.process_time()
            report = replay(lines, publisher, source=str(path))
            cpu_s = time.process_time() - cpu_started
        stats = publisher.stats
        return IngestResult(
            "replay", batch_events, report.sent, stats.messages, stats.bytes / 1e6, report.elapsed_s, cpu_s
        )


def run_simulator(kafka: KafkaSettings, batch_events: int, events: int, partitions: int) -> IngestResult:
    with BenchTopics(kafka, f"sim{batch_events}", partitions) as topics:
        simulator = Simulator(SimulatorSettings(communities=50, seed=5, events_per_sim_s=500))
        with EventPublisher(kafka, PublisherSettings(batch_events=batch_events), topics) as publisher:
            started = time.perf_counter()
            cpu_started = time.process_time()  # the simulator's own work included
            for n, event in enumerate(simulator.events(count=events)):
                publisher.publish(event)
                if n & 4095 == 0:
                    publisher.poll()
            publisher.flush()
            seconds = time.perf_counter() - started
            cpu_s = time.process_time() - cpu_started
        stats = publisher.stats
        return IngestResult(
            "simulator", batch_events, stats.events, stats.messages, stats.bytes / 1e6, seconds, cpu_s
        )


class BenchTopics:
    def __init__(self, kafka: KafkaSettings, label: str, partitions: int) -> None:
        self.kafka = kafka
        self.topics = Topics.prefixed(f"bench-{int(time.time() * 1000)}-{label}-")
        self.partitions = partitions
        self.extra: list[str] = []  # topics made by others during the run, e.g. a worker's changelog

    def __enter__(self) -> Topics:
        ensure_topics(self.kafka, dict.fromkeys(self.topics.all, self.partitions), 1)
        return self.topics

    def __exit__(self, *exc_info: object) -> None:
        admin = KafkaAdminClient(**self.kafka.client_config())
        try:
            admin.delete_topics([*self.topics.all, *self.extra])
        except KafkaError:
            pass  # leftover bench topics are harmless and named as such; the figures are what matter
        finally:
            admin.close()


def ingest_runs(
    kafka: KafkaSettings, state_dir: Path, events: int, single_events: int, partitions: int
) -> Iterator[IngestResult]:
    path = bench_file(state_dir, events, seed=42)
    yield run_replay(kafka, path, 500, None, partitions)  # the file holds `events` lines
    yield run_replay(kafka, path, 1, single_events, partitions)
    sim_events = min(events, 100_000)
    yield run_simulator(kafka, 500, sim_events, partitions)
    yield run_simulator(kafka, 1, min(single_events, sim_events), partitions)
