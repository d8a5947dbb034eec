"""Sink benchmark: rows/s into the embedded engine through the sink's own path (record values turned
into JSON rows by the table's spec, one JSONEachRow insert per batch with its deduplication token), for several batch
sizes in the same run; the smallest size is the baseline. Kafka is left out on purpose: the loader's
consumers are measured by the end-to-end benchmark, this one isolates the insert cost per batch size.

Each run uses a fresh store under the state directory, deleted afterwards.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from agents import Simulator, SimulatorSettings
from pipeline.warehouse import ClickHouseSettings, apply_migrations, connect
from pipeline.warehouse.routes import engagement_minute_spec, events_spec
from pipeline.warehouse.table_sink import Lines, TableSpec, insert_lines
from schemas import encode_message
from schemas.outputs import WindowValue, encode_outputs


@dataclass(frozen=True, slots=True)
class SinkResult:
    table: str
    batch_rows: int
    rows: int
    seconds: float

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds


def window_values(rows: int) -> list[bytes]:
    """Record values as the processors emit them: 50 window values per message."""
    windows = [
        WindowValue("vk", f"c{i % 7}", f"p{i % 5000}", 1_795_000_000_000 + (i // 5000) * 60_000,
                    i % 40, 0, i % 9, i % 3, i % 30, float(i % 40 + 2 * (i % 9) + 3 * (i % 3)))
        for i in range(rows)
    ]  # fmt: skip
    return [encode_outputs(windows[i : i + 50]) for i in range(0, rows, 50)]


def event_values(rows: int) -> list[bytes]:
    events = list(Simulator(SimulatorSettings(communities=5, seed=5)).events(count=rows))
    return [encode_message(events[i : i + 500]) for i in range(0, rows, 500)]


def sink_runs(state_dir: Path, rows: int, batch_sizes: list[int]) -> list[SinkResult]:
    store = (state_dir / "bench" / f"clickhouse-{time.time_ns()}").resolve()
    client = connect(ClickHouseSettings(dsn=f"chdb://{store}", database="bench"))
    try:
        apply_migrations(client)
        inputs: list[tuple[TableSpec, list[bytes]]] = [
            (engagement_minute_spec(), window_values(rows)),
            (events_spec(), event_values(rows)),
        ]
        results = []
        for spec, values in inputs:
            for size in batch_sizes:
                client.command(f"TRUNCATE TABLE {spec.table}")
                results.append(_run(client, spec, values, size))
        return results
    finally:
        client.close()
        shutil.rmtree(store, ignore_errors=True)


def _run(client: object, spec: TableSpec, values: list[bytes], batch_rows: int) -> SinkResult:
    written = 0
    pending: list[Lines] = []
    pending_rows = 0
    started = time.perf_counter()
    for n, value in enumerate(values):
        lines = spec.lines_of(value)
        pending.append(lines)
        pending_rows += lines.rows
        if pending_rows >= batch_rows or n == len(values) - 1:
            insert_lines(
                client, spec.insert_into, b"".join(p.data for p in pending), f"{spec.table}:bench/{n}"
            )
            written += pending_rows
            pending, pending_rows = [], 0
    return SinkResult(spec.table, batch_rows, written, time.perf_counter() - started)
