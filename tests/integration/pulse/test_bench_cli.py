"""`pulse bench ingest` runs end to end and prints its table (figures are read by people, not asserted)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from kafka import KafkaAdminClient

from schemas import KafkaSettings
from schemas.wire import state_changelog_topic


def test_bench_ingest_prints_batched_and_baseline_rows(kafka: KafkaSettings, tmp_path: Path) -> None:
    env = {**os.environ, "PULSE_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers, "COLUMNS": "200"}
    result = subprocess.run(
        [sys.executable, "-m", "pulse", "--state-dir", str(tmp_path), "bench", "ingest", "--events", "2000",
         "--single-events", "200", "--partitions", "2"],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("│")]
    assert [row.split("│")[1].strip() for row in rows] == ["replay", "replay", "simulator", "simulator"]
    assert [row.split("│")[3].strip() for row in rows] == ["2,000", "200", "2,000", "200"]
    assert "peak memory" in result.stdout


def test_bench_sink_prints_each_batch_size_and_leaves_no_store_behind(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pulse", "--state-dir", str(tmp_path), "bench", "sink", "--rows", "2000",
         "--batch-rows", "100,1000"],
        capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"}, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = [
        [cell.strip() for cell in line.split("│")[1:-1]] for line in result.stdout.splitlines() if "│" in line
    ]
    assert [(r[0], r[1], r[2], r[5]) for r in rows] == [
        ("engagement_minute", "100", "2,000", "1.0x"),
        ("engagement_minute", "1,000", "2,000", rows[1][5]),
        ("events", "100", "2,000", "1.0x"),
        ("events", "1,000", "2,000", rows[3][5]),
    ]
    assert list((tmp_path / "bench").iterdir()) == []


def test_bench_end_to_end_prints_batched_and_baseline_rows(kafka: KafkaSettings, tmp_path: Path) -> None:
    env = {**os.environ, "PULSE_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers, "COLUMNS": "200"}
    result = subprocess.run(
        [sys.executable, "-m", "pulse", "--state-dir", str(tmp_path), "bench", "--events", "2000",
         "--single-events", "200", "--live", "2", "--live-rate", "200", "--partitions", "2"],
        capture_output=True, text=True, env=env, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = [
        [cell.strip() for cell in line.split("│")[1:-1]] for line in result.stdout.splitlines() if "│" in line
    ]
    shape, results, timings = rows[0], rows[1:3], rows[3:5]  # no broker CPU: not a `pulse kafka up` broker
    records = rows[5 : next(i for i, r in enumerate(rows) if r[0] == "all") + 1]
    baselines = rows[len(rows) - 5 :]
    assert shape[0] == "realistic" and shape[2] == "2,000"
    assert {r[0] for r in records} >= {
        "likes",
        "comments",
        "reposts",
        "engagement",
        state_changelog_topic("processor"),  # the run's app id, its prefix removed
        "all",
    }
    assert float(records[-1][2]) > 0, "the records per input event of all topics"
    assert [r[0].split(":")[0] for r in baselines] == ["broker alone"] * 3 + [
        "ClickHouse alone",
        "community-pulse end to end (median of the batched runs)",
    ]
    assert all(float(r[3].replace(",", "")) > 0 for r in baselines)
    assert [(r[0], r[1]) for r in results] == [("500", "2,000"), ("1", "200")]
    assert all(float(r[4]) > 0 and float(r[10]) > 0 for r in results), (
        "latency and the worker's memory measured"
    )
    on_topic_p50, on_topic_p99 = float(results[0][6]), float(results[0][7])
    assert 0 < on_topic_p50 <= on_topic_p99, "the live probes' alerts timed on the alerts topic"
    assert [(r[0], r[1]) for r in timings] == [("500", "2,000"), ("1", "200")]
    for r in timings:
        read, processed, loaded, worker_cpu, loader_cpu = map(float, r[2:7])
        assert 0 < read <= processed <= loaded == float(results[timings.index(r)][2])
        assert worker_cpu > 0 and loader_cpu > 0
        cpu_us, ceiling = float(r[-2]), float(r[-1].replace(",", ""))
        count = float(r[1].replace(",", ""))
        spent = [float(cell) for cell in r[5:-2]]  # each rounded to 0.01 s
        slack = (0.005 * len(spent) / count) * 1e6 + 0.05
        assert abs(cpu_us - sum(spent) / count * 1e6) <= slack, "CPU per event from the CPU columns"
        assert abs(ceiling - len(os.sched_getaffinity(0)) * 1e6 / cpu_us) <= ceiling * 0.01
    assert "Speed reference" in result.stdout
    assert not [p for p in (tmp_path / "bench").iterdir() if p.name.startswith("store-")], "stores removed"
    admin = KafkaAdminClient(**kafka.client_config())
    try:
        left = [*admin.list_topics(), *(group["group_id"] for group in admin.list_groups())]
    finally:
        admin.close()
    assert not [n for n in left if n.startswith(("bench-e2e-", "bench-raw-"))], (
        "the runs' topics and groups removed"
    )
    assert not list((tmp_path / "bench").glob("*.ndjson")), "the event files removed"
