"""A real `pulse process` worker in a subprocess, for integration tests: start, kill -9, wait for it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from pulse.errors import TopicError
from pulse.topics import group_lag
from schemas import KafkaSettings, Topics
from schemas.outputs import Output, decode_outputs
from tests.kafka_reading import read_all


class Worker:
    def __init__(self, kafka: KafkaSettings, prefix: str, log: Path, **processor: Any) -> None:
        self.kafka = kafka
        self.topics = Topics.prefixed(prefix)
        self.app_id = f"{prefix}app"
        self.log = log
        self.env = {
            **os.environ,
            "PULSE_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
            "PULSE_TOPICS__PREFIX": prefix,
            "PULSE_TOPICS__EVENT_PARTITIONS": "2",
            "PULSE_PROCESSOR__APP_ID": self.app_id,
            "PULSE_PROCESSOR__TICK_INTERVAL_S": "0.2",
            "PULSE_PROCESSOR__COMMIT_INTERVAL_S": "0.5",
            "PULSE_PROCESSOR__STANDBY_REPLICAS": "0",
            "PULSE_PROCESSOR__SESSION_TIMEOUT_S": "6",  # a killed worker's partitions move on quickly
            **{f"PULSE_PROCESSOR__{k.upper()}": str(v) for k, v in processor.items()},
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Worker:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "pulse", "process"], stdout=out, stderr=subprocess.STDOUT, env=self.env
            )
        return self

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                raise
        return self.process.returncode

    def wait_caught_up(self, timeout_s: float = 120) -> None:
        """Until the group has committed every input message (outputs are flushed before each commit)."""
        inputs = [self.topics.likes, self.topics.comments, self.topics.reposts]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(
                    f"worker exited with {self.process.returncode}: {self.log.read_text()[-3000:]}"
                )
            try:
                if sum(group_lag(self.kafka, self.app_id, inputs).values()) == 0:
                    return
            except TopicError:
                pass  # a fresh broker has no group coordinator yet: ask again

            time.sleep(0.5)
        raise AssertionError(f"worker did not catch up in {timeout_s} s: {self.log.read_text()[-3000:]}")

    def outputs(self, *topics: str) -> list[Output]:
        return [out for record in read_all(self.kafka, *topics) for out in decode_outputs(record.value)]
