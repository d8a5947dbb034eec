"""The chaos reference against the real pipeline: a realistic file (duplicates, disorder, malformed lines,
and here also events far behind the stream, an event from the future and blank lines) through
`pulse run --replay FILE --exit-when-done` (real broker, workers, loader, embedded store), and the three
tables held against what `pulse.chaos` works out from the file alone: they must agree exactly."""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from pathlib import Path

import orjson

from pipeline.warehouse import ClickHouseSettings
from pulse.bench.shapes import write_file
from pulse.chaos import ReferenceRules, expected_from_file, judge_store, store_query
from schemas import KafkaSettings
from tests.integration.pulse.test_run_end_to_end import pulse

LATE_S = 600  # behind the stream: beyond the default allowed lateness (2 min)


def roughen(file: Path, rng: random.Random) -> int:
    """Adds what the shape has too few of at this size; returns how many lines are bad."""
    lines = file.read_bytes().splitlines()
    late = []
    for i, line in enumerate(rng.sample(lines[len(lines) // 2 :], 300)):
        event = orjson.loads(line)
        if event["type"] in ("like", "repost") or (
            event["type"] == "comment" and not event.get("by_community")
        ):
            event |= {"event_id": f"late-{i}", "ts": event["ts"] - LATE_S * 1000}
            if event["type"] == "comment":  # late for the windows, yet a clock like any other
                event |= {"comment_id": f"late-{i}", "parent_id": None}
            late.append(orjson.dumps(event))
    future = orjson.loads(lines[-1]) | {
        "event_id": "from-the-future",
        "ts": time.time_ns() // 1_000_000 + 86_400_000,
    }
    bad = [b"not json at all", b'{"event_id": "x1", "type": "like"}', b'{"type": 7}', orjson.dumps(future)]
    for line in [*late, *bad, b"", b"  "]:
        lines.insert(rng.randrange(len(lines) * 3 // 4, len(lines)), line)
    file.write_bytes(b"\n".join(lines) + b"\n")
    return len(bad)


def test_a_realistic_replay_leaves_exactly_the_reference_rows(kafka: KafkaSettings, tmp_path: Path) -> None:
    file = tmp_path / "realistic.ndjson"
    shape = write_file(file, "realistic", 20_000)
    bad_lines = roughen(file, random.Random(7))
    store = f"chdb://{tmp_path / 'store'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULSE_")} | {"COLUMNS": "200"}
    args = ["--state-dir", str(tmp_path / "state"), "run", "--replay", str(file), "--exit-when-done",
            "--kafka", kafka.bootstrap_servers, "--clickhouse", store, "--comment-sla", "5m",
            "--no-notify"]  # fmt: skip
    replayed_at_ms = time.time_ns() // 1_000_000
    done = pulse(env, *args)
    assert done.returncode == 0, done.stderr + done.stdout

    expected = expected_from_file(file, ReferenceRules(sla_s=300), wall_clock_ms=replayed_at_ms)
    verdict = judge_store(expected, store_query(ClickHouseSettings(dsn=store)))

    assert verdict.exact, str(verdict)
    assert len(expected.rejected_lines) == shape.malformed + bad_lines
    assert len(expected.duplicate_lines) == shape.duplicates
    assert expected.late_events > 100
    assert verdict.table("engagement_minute").matched > 2_000
    assert verdict.table("comment_sla").matched > 4_000
    kinds = Counter(row.kind for row in expected.alerts.values())
    assert kinds["unanswered_comment"] > 1_000 and kinds["resolved"] > 100 and kinds["at_risk"] > 1_000
    stages = Counter(
        (row.breached, row.answered_at_ms is not None, row.cancelled) for row in expected.sla.values()
    )
    assert stages[(False, True, False)] > 100  # answered in time
    assert stages[(False, False, True)] + stages[(True, False, True)] > 10  # deleted
