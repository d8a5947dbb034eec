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
