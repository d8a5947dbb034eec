"""A real `pulse process` worker for integration tests, with settings that make restarts quick."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pulse.local.worker_process import WorkerProcess
from schemas import KafkaSettings
from schemas.outputs import Output, decode_outputs
from tests.kafka_reading import read_all

TEST_SETTINGS = {
    "tick_interval_s": 0.2,
    "commit_interval_s": 0.5,
    "standby_replicas": 0,
    "session_timeout_s": 6,
    "progress_log_interval_s": 2,  # a killed worker's partitions move on quickly
}


class Worker(WorkerProcess):
    def __init__(self, kafka: KafkaSettings, prefix: str, log: Path, **processor: Any) -> None:
        super().__init__(kafka, prefix, 2, log, {**TEST_SETTINGS, **processor})

    def outputs(self, *topics: str) -> list[Output]:
        return [out for record in read_all(self.kafka, *topics) for out in decode_outputs(record.value)]
