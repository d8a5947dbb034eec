"""`pulse simulate` into the real broker, and its clean stop on SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

from pulse.topics import ensure_topics
from schemas import KafkaSettings, Topics
from tests.kafka_reading import read_all


def test_sigterm_flushes_and_exits_zero(kafka: KafkaSettings, unique: str) -> None:
    topics = Topics.prefixed(f"s{unique}-")
    ensure_topics(kafka, dict.fromkeys(topics.all, 2), 1)
    env = {
        **os.environ,
        "PULSE_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "PULSE_TOPICS__PREFIX": f"s{unique}-",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "pulse", "simulate", "--duration", "10m", "--rate", "300", "--accelerate", "60"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    time.sleep(4)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    sent = int(re.search(r"([\d,]+) events sent", out).group(1).replace(",", ""))  # type: ignore[union-attr]
    assert sent > 100
    assert sum(len(r.events) for r in read_all(kafka, *topics.event_topics)) == sent


def test_simulated_time_running_ahead_of_the_wall_clock_is_dead_lettered(
    kafka: KafkaSettings, unique: str
) -> None:
    from schemas import DLQ_CODE, DLQ_STAGE

    topics = Topics.prefixed(f"a{unique}-")
    ensure_topics(kafka, dict.fromkeys(topics.all, 2), 1)
    env = {
        **os.environ,
        "PULSE_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "PULSE_TOPICS__PREFIX": f"a{unique}-",
        "PULSE_MAX_CLOCK_SKEW_S": "60",
    }
    done = subprocess.run(
        [sys.executable, "-m", "pulse", "simulate", "--start", "now", "--duration", "4s", "--rate", "100",
         "--accelerate", "120"],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    finished_ms = time.time_ns() // 1_000_000
    assert done.returncode == 0, done.stderr
    assert "simulated time runs" in done.stderr, "warned before it started"
    ahead = int(re.search(r"([\d,]+) stamped ahead", done.stdout).group(1).replace(",", ""))  # type: ignore[union-attr]
    dead = read_all(kafka, topics.dead_letters)
    assert ahead > 50 and len(dead) == ahead
    assert {(d.headers[DLQ_STAGE], d.headers[DLQ_CODE]) for d in dead} == {
        (b"ingest-simulator", b"ts_ahead_of_clock")
    }
    events = [e for r in read_all(kafka, *topics.event_topics) for e in r.events]
    assert events and max(e.ts_ms for e in events) <= finished_ms + 60_000
