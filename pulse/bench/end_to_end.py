"""End-to-end benchmark: the whole pipeline (broker, a stream worker, the loader into a fresh embedded
store) as `pulse run` starts it, on private topics and groups deleted afterwards.

- Throughput: N events are written to a file (untimed), then replayed through the real broker; the clock
  runs from the first line read until the workers have committed everything and the loader has
  committed every output, i.e. until every event is a row in ClickHouse. The pipeline is started, its
  workers have settled into their group, and it is warmed up first, so its start-up is not counted.
- Latency, on live traffic stamped with the wall clock at a steady rate: record timestamp to row in
  ClickHouse, measured on subscriber comments (first `comment_sla` row written, `written_at` -
  `commented_at`), and for alerts from the SLA deadline to the alert's row (`written_at` - `fired_at`).
- Peak memory (VmHWM) of the worker and the loader.
Batched messages (500 events) and one event per message run in the same invocation.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import msgspec

from agents import EventPublisher, Simulator, SimulatorSettings, replay
from pipeline.warehouse.query_service import run_query
from pulse.errors import PulseError
from pulse.local.child_process import cpu_seconds
from pulse.local.local_pipeline import LocalPipeline, RunOptions
from pulse.settings import Settings
from schemas import CanonicalEvent, encode_event, validate

SLA_COMMUNITY = "bench-sla"
SLA_S = 3.0


@dataclass(frozen=True, slots=True)
class EndToEndResult:
    batch_events: int
    events: int
    seconds: float
    latency_p50_ms: float
    latency_p99_ms: float
    alert_p50_ms: float | None
    alert_p99_ms: float | None
    peak_mb: dict[str, float]
    cpu_s: dict[str, float]  # CPU seconds each process spent during the timed replay
    phases_s: dict[str, float]  # seconds from the start until: the file was read, processed, loaded

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds


def python_speed_ms() -> float:
    """A fixed pure-Python workload, best of five: the figures above scale with it. The machines here
    change speed by half from one hour to the next, so a run's figures are read against its own
    reference (about 16 ms when a machine of this kind is quiet)."""
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(1_000):
            sum(range(1000))
        best = min(best, time.perf_counter() - started)
    return best * 1000


def _recent_file(state_dir: Path, events: int) -> Path:
    """Simulated events stamped as the minutes before now, so live traffic continues them."""
    path = state_dir / "bench" / f"e2e-{events}-{time.time_ns()}.ndjson"
    path.parent.mkdir(parents=True, exist_ok=True)
    stream = list(
        Simulator(SimulatorSettings(communities=50, seed=9, events_per_sim_s=500)).events(count=events)
    )
    shift = int(time.time() * 1000) - stream[-1].ts_ms
    with path.open("wb") as out:
        for event in stream:
            out.write(encode_event(msgspec.structs.replace(event, ts=event.ts_ms + shift)) + b"\n")
    return path


def _comment(i: int, now_ms: int, community: str) -> CanonicalEvent:
    return validate(
        {"event_id": f"live-{community}-{i}", "type": "comment", "platform": "sim", "community_id": community,
         "post_id": f"live-p{i % 20}", "user_id": f"u{i}", "comment_id": f"live-{community}-m{i}",
         "text": "anyone?", "ts": now_ms}
    )  # fmt: skip


def _cpu_readings(pipeline: LocalPipeline, broker_pid: int | None) -> dict[str, float]:
    """CPU seconds so far by process name (the stream workers summed)."""
    readings: dict[str, float] = {}
    for child in pipeline.children:
        readings[child.name] = readings.get(child.name, 0.0) + child.cpu_s()
    readings["the replay"] = time.process_time()
    if broker_pid is not None:
        readings["the broker"] = cpu_seconds(broker_pid)
    return readings


def run_end_to_end(
    settings: Settings,
    batch_events: int,
    events: int,
    live_s: float,
    live_rate: float,
    partitions: int,
    workers: int = 1,
    broker_pid: int | None = None,
) -> EndToEndResult:
    """`workers` stream workers share the partitions; `broker_pid`: the local broker's process, for its
    CPU share (None: a broker elsewhere)."""
    run_id = f"bench-e2e-{int(time.time() * 1000)}-{batch_events}-"
    store = (settings.state_dir / "bench" / f"store-{run_id.rstrip('-')}").resolve()
    s = settings.model_copy(
        update={
            "topics": settings.topics.model_copy(update={"prefix": run_id, "event_partitions": partitions}),
            "processor": settings.processor.model_copy(
                update={"app_id": f"{run_id}processor", "sla_per_community_s": {SLA_COMMUNITY: SLA_S}}
            ),
            "sink": settings.sink.model_copy(update={"group": f"{run_id}sink"}),
            "clickhouse": settings.clickhouse.model_copy(
                update={"dsn": f"chdb://{store}", "database": "bench"}
            ),
            "publisher": settings.publisher.model_copy(update={"batch_events": batch_events}),
            "log_level": "WARNING",
        }
    )
    log_dir = settings.state_dir.resolve() / "bench" / run_id.rstrip("-")
    file = _recent_file(settings.state_dir, events)
    pipeline = LocalPipeline(s, RunOptions(workers=workers, notify=False), log_dir)
    try:
        pipeline.start()
        pipeline.wait_settled(timeout_s=180)  # a worker joining late would stop the group mid-run
        with EventPublisher(s.kafka, s.publisher, pipeline.topics) as publisher:  # warm-up: one comment
            publisher.publish(_comment(0, int(time.time() * 1000), "bench-warmup"))
        pipeline.wait_processed(timeout_s=180)
        pipeline.wait_loaded(timeout_s=180)

        cpu_before = _cpu_readings(pipeline, broker_pid)
        started = time.perf_counter()
        with file.open("rb") as lines, EventPublisher(s.kafka, s.publisher, pipeline.topics) as publisher:
            replay(lines, publisher, source=str(file))
        phases = {"read": time.perf_counter() - started}
        pipeline.wait_processed(timeout_s=1800)
        phases["processed"] = time.perf_counter() - started
        pipeline.wait_loaded(timeout_s=1800)
        seconds = time.perf_counter() - started
        phases["loaded"] = seconds
        cpu = {name: spent - cpu_before[name] for name, spent in _cpu_readings(pipeline, broker_pid).items()}

        live_from_ms = int(time.time() * 1000)
        sent = 0
        with EventPublisher(s.kafka, s.publisher, pipeline.topics) as publisher:
            begun = time.time()
            while (elapsed := time.time() - begun) < live_s:
                now_ms = int(time.time() * 1000)
                while sent < int(elapsed * live_rate):
                    community = SLA_COMMUNITY if sent % 10 == 0 else "bench-live"
                    publisher.publish(_comment(sent, now_ms, community))
                    sent += 1
                publisher.poll()
                time.sleep(0.002)
        time.sleep(SLA_S + 2)  # the last deadlines pass on the wall clock
        pipeline.wait_processed(timeout_s=300)
        pipeline.wait_loaded(timeout_s=300)
        latency = run_query(
            s.clickhouse,
            "SELECT quantileExact(0.5)(ms), quantileExact(0.99)(ms), count() FROM (SELECT comment_id, "
            "toUnixTimestamp64Milli(min(written_at)) - toUnixTimestamp64Milli(any(commented_at)) AS ms "
            "FROM comment_sla WHERE community_id = 'bench-live' AND commented_at >= fromUnixTimestamp64Milli("
            f"{live_from_ms}) GROUP BY comment_id)",
            open_store=False,
        ).rows[0]
        alerts = run_query(
            s.clickhouse,
            "SELECT quantileExact(0.5)(ms), quantileExact(0.99)(ms), count() FROM (SELECT "
            "toUnixTimestamp64Milli(min(written_at)) - toUnixTimestamp64Milli(any(fired_at)) AS ms FROM alerts "
            f"WHERE community_id = '{SLA_COMMUNITY}' AND kind = 'unanswered_comment' GROUP BY alert_id)",
            open_store=False,
        ).rows[0]
        peaks: dict[str, float] = {}  # the largest stream worker's
        for child in pipeline.children:
            peaks[child.name] = max(peaks.get(child.name, 0.0), child.peak_mb())
    finally:
        try:
            pipeline.stop()
            pipeline.delete_topics_and_groups()
        finally:  # the file (200 MB for 1M events) and the store go even when the broker does not answer
            shutil.rmtree(store, ignore_errors=True)
            file.unlink(missing_ok=True)
    if not latency[2]:
        raise PulseError(f"no live comment reached ClickHouse; logs in {log_dir}")
    return EndToEndResult(
        batch_events=batch_events,
        events=events,
        seconds=seconds,
        latency_p50_ms=float(latency[0]),
        latency_p99_ms=float(latency[1]),
        alert_p50_ms=float(alerts[0]) if alerts[2] else None,
        alert_p99_ms=float(alerts[1]) if alerts[2] else None,
        peak_mb=peaks,
        cpu_s=cpu,
        phases_s=phases,
    )
