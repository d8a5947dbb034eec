"""Several stream workers in one group split the partitions and give the same tables as one worker, also
when one of them is killed (SIGKILL) mid-way: the real broker, real worker processes, the loader and the
embedded store, as `pulse run` starts them."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from agents import EventPublisher, Simulator, SimulatorSettings, replay
from pipeline.warehouse.query_service import run_query
from pulse.local.local_pipeline import LocalPipeline, RunOptions
from pulse.settings import load
from schemas import KafkaSettings, encode_event

TABLES = ("engagement_minute", "comment_sla", "alerts")
EXCEPT = {
    "engagement_minute": "written_at",
    "comment_sla": "written_at",
    "alerts": "written_at",
}


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("scale") / "events.ndjson"
    sim = Simulator(SimulatorSettings(communities=6, events_per_sim_s=3.0, answer_median_s=600, seed=21))
    path.write_bytes(b"".join(encode_event(e) + b"\n" for e in sim.events(count=60_000)))
    return path


def wait_until_each_worker_owns_partitions(logs: Path, workers: int, timeout_s: float = 90) -> None:
    """A worker creates a partition's processor on its first message, and its own beats (ticks) reach
    every partition it owns: once each log says "resumed", the group has settled with every worker in it."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        logs_ = sorted(logs.glob("worker-*.log"))
        if len(logs_) == workers and all(": resumed with" in log.read_text() for log in logs_):
            return
        time.sleep(0.3)
    raise AssertionError("the workers did not all get partitions in time")


def run_pipeline(
    kafka: KafkaSettings, base: Path, file: Path, name: str, workers: int, kill_one: bool
) -> list[Any]:
    prefix = f"{name}-{time.time_ns()}-"
    settings = load(
        state_dir=base / name,
        kafka={"bootstrap_servers": kafka.bootstrap_servers},
        topics={"prefix": prefix, "event_partitions": 4},
        processor={"app_id": f"{prefix}processor", "live_lag_s": 0, "sla_default_s": 1800,
                   "session_timeout_s": 6, "tick_interval_s": 0.2, "commit_interval_s": 0.5},
        sink={"group": f"{prefix}sink", "flush_interval_s": 0.2},
        clickhouse={"dsn": f"chdb://{base / name / 'store'}"},
    )  # fmt: skip
    pipeline = LocalPipeline(settings, RunOptions(workers=workers, notify=False), base / name / "logs")
    pipeline.start()
    try:
        wait_until_each_worker_owns_partitions(base / name / "logs", workers)
        lines = file.read_bytes().splitlines(keepends=True)
        with EventPublisher(settings.kafka, settings.publisher, pipeline.topics) as publisher:
            first = replay(lines[: len(lines) // 2], publisher, source="first half")
        if kill_one:
            time.sleep(1.0)  # both workers busy with the first half
            pipeline.workers[1].kill()
            pipeline.children.remove(pipeline.workers[1])
        with EventPublisher(settings.kafka, settings.publisher, pipeline.topics) as publisher:
            second = replay(lines[len(lines) // 2 :], publisher, source="second half")
        pipeline.wait_processed(timeout_s=240)
        pipeline.finish_input(max(first.newest_event_ms, second.newest_event_ms), timeout_s=120)
        pipeline.wait_loaded(timeout_s=240)
        return [
            sorted(
                map(
                    str,
                    run_query(
                        settings.clickhouse, f"SELECT * EXCEPT ({EXCEPT[t]}) FROM {t} FINAL", open_store=False
                    ).rows,
                )
            )
            for t in TABLES
        ]
    finally:
        pipeline.stop()


def same_tables(got: list[Any], want: list[Any]) -> bool:
    for table, a, b in zip(TABLES, got, want, strict=True):
        missing, extra = sorted(set(b) - set(a)), sorted(set(a) - set(b))
        assert not missing and not extra, (
            f"{table}: {len(missing)} rows missing, e.g. {missing[:3]}; {len(extra)} extra, e.g. {extra[:3]}"
        )
    return True


def partitions_taken(base: Path, name: str) -> list[set[str]]:
    """Per worker log: the input partitions it processed ("partition N: resumed ...")."""
    return [
        {
            line.split("partition ")[1].split(":")[0]
            for line in log.read_text().splitlines()
            if ": resumed with" in line
        }
        for log in sorted((base / name / "logs").glob("worker-*.log"))
    ]


def test_two_workers_and_a_killed_one_give_the_tables_of_one(
    kafka: KafkaSettings, scenario: Path, tmp_path: Path
) -> None:
    one = run_pipeline(kafka, tmp_path, scenario, "one", workers=1, kill_one=False)
    assert all(len(rows) > 100 for rows in one)
    two = run_pipeline(kafka, tmp_path, scenario, "two", workers=2, kill_one=False)
    first, second = partitions_taken(tmp_path, "two")
    assert first and second and first | second == {"0", "1", "2", "3"}, "the workers split the partitions"
    assert same_tables(two, one)
    killed = run_pipeline(kafka, tmp_path, scenario, "killed", workers=2, kill_one=True)
    survivor, _ = partitions_taken(tmp_path, "killed")
    assert survivor == {"0", "1", "2", "3"}, "the survivor took over the killed worker's partitions"
    assert same_tables(killed, one)
