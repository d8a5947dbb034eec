"""Stream-processor benchmark: events/s through one real `pulse process` worker, end-to-end latency, and
alert latency after the SLA deadline, with batched messages against one event per message.

Throughput: the input is loaded into fresh topics first (so the producer does not compete with the worker
for the CPU), then one worker drains it; the rate is events / (last output's broker timestamp - the
worker's first output's), i.e. measured by Kafka, not by polling. Latency: the worker then runs live, the
events stamped with the wall clock as they are sent at a steady rate; each engagement output carries the
record timestamp of the input message behind it, so latency = output timestamp - input timestamp.
Alert latency: subscriber comments with a 3 s SLA that nobody answers; latency = alert timestamp -
deadline.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import msgspec

from agents import EventPublisher, PublisherSettings, Simulator, SimulatorSettings
from pulse.bench.ingest import BenchTopics
from pulse.errors import PulseError
from pulse.local.worker_process import WorkerProcess
from pulse.topics import read_records
from schemas import CanonicalEvent, KafkaSettings, validate
from schemas.outputs import Alert, decode_outputs
from schemas.wire import SOURCE_TS_HEADER, state_changelog_topic

SLA_COMMUNITY = "bench-sla"
SLA_S = 3.0


@dataclass(frozen=True, slots=True)
class ProcessResult:
    batch_events: int
    events: int
    seconds: float
    latency_p50_ms: float
    latency_p99_ms: float
    live_events_per_s: float
    alert_p50_ms: float | None
    alert_p99_ms: float | None
    alerts: int
    worker_peak_mb: float

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds


def _live(event: CanonicalEvent, now_ms: int) -> CanonicalEvent:
    return msgspec.structs.replace(event, ts=now_ms, event_id=f"live-{event.event_id}")


def _unanswered(i: int, now_ms: int) -> CanonicalEvent:
    return validate(
        {"event_id": f"sla-{i}", "type": "comment", "platform": "sim", "community_id": SLA_COMMUNITY,
         "post_id": f"sla-p{i % 20}", "user_id": f"u{i}", "comment_id": f"sla-m{i}", "text": "anyone?",
         "ts": now_ms}
    )  # fmt: skip


def _percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def run_process(
    kafka: KafkaSettings, state_dir: Path, batch_events: int, events: int, live_s: float, live_rate: float,
    partitions: int, with_alerts: bool,
) -> ProcessResult:  # fmt: skip
    label = f"proc{batch_events}"
    bench_topics = BenchTopics(kafka, label, partitions)
    with bench_topics as topics:
        prefix = topics.likes.removesuffix("likes")
        bench_topics.extra.append(state_changelog_topic(f"{prefix}app"))
        publisher_settings = PublisherSettings(batch_events=batch_events)
        simulator = Simulator(SimulatorSettings(communities=50, seed=9, events_per_sim_s=500))
        stream = simulator.events(count=events + int(live_s * live_rate) + 1_000)
        # The backlog is stamped as the last minutes before now, so the live part continues it (a jump
        # from simulated history to now would fire every open comment's SLA at once and measure that).
        backlog = [event for _, event in zip(range(events), stream, strict=False)]
        shift = int(time.time() * 1000) - backlog[-1].ts_ms
        with EventPublisher(kafka, publisher_settings, topics) as publisher:
            for event in backlog:
                publisher.publish(_live(event, event.ts_ms + shift))
            publisher.flush()
        del backlog
        log = state_dir / "bench" / f"{label}-worker.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        processor = {"sla_per_community_s": json.dumps({SLA_COMMUNITY: SLA_S}), "at_risk_fraction": 0.5}
        worker = WorkerProcess(kafka, prefix, partitions, log, processor)
        worker.env["PULSE_LOG_LEVEL"] = "WARNING"
        worker.start()
        try:
            worker.wait_drained(timeout_s=600)
            drained = read_records(kafka, topics.engagement)
            first = min(r.timestamp for r in drained)
            last = max(r.timestamp for r in drained)
            seconds = max(last - first, 1) / 1000

            # Live: events stamped with the wall clock, sent at a steady rate, while the worker runs.
            sent, started = 0, time.time()
            with EventPublisher(kafka, publisher_settings, topics) as publisher:
                while (elapsed := time.time() - started) < live_s:
                    due = int(elapsed * live_rate)
                    now_ms = int(time.time() * 1000)
                    while sent < due:
                        publisher.publish(_live(next(stream), now_ms))
                        sent += 1
                    publisher.poll()
                    time.sleep(0.002)
                if with_alerts:
                    for i in range(200):
                        publisher.publish(_unanswered(i, int(time.time() * 1000)))
                        publisher.poll()
                        time.sleep(0.01)
                publisher.flush()
            worker.wait_drained(timeout_s=120)
            if with_alerts:
                time.sleep(SLA_S + 3)  # the last deadlines pass on the wall clock
            live = [r for r in read_records(kafka, topics.engagement) if r.timestamp > last]
            latencies = [
                float(r.timestamp - int(r.headers[SOURCE_TS_HEADER]))
                for r in live
                if SOURCE_TS_HEADER in r.headers
            ]
            alert_latencies: list[float] = []
            for record in read_records(kafka, topics.alerts):
                for alert in decode_outputs(record.value):
                    if (
                        isinstance(alert, Alert)
                        and alert.kind.value == "unanswered_comment"
                        and alert.community_id == SLA_COMMUNITY
                    ):
                        alert_latencies.append(float(record.timestamp - alert.fired_at_ms))
            peak = worker.peak_mb()
        finally:
            worker.stop()
    if not latencies:
        raise PulseError(f"no live output to measure latency from; see {log}")
    return ProcessResult(
        batch_events=batch_events,
        events=events,
        seconds=seconds,
        latency_p50_ms=_percentile(latencies, 50),
        latency_p99_ms=_percentile(latencies, 99),
        live_events_per_s=sent / live_s,
        alert_p50_ms=_percentile(alert_latencies, 50) if alert_latencies else None,
        alert_p99_ms=_percentile(alert_latencies, 99) if alert_latencies else None,
        alerts=len(alert_latencies),
        worker_peak_mb=peak,
    )
