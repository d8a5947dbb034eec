"""`pulse bench ingest` runs end to end and prints its table (figures are read by people, not asserted)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from schemas import KafkaSettings


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
