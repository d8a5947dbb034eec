"""A `pulse process` worker as a child process: for `pulse run`, benchmarks and integration tests, which
need the real worker (its own process, killable with SIGKILL) rather than an app object in their own
event loop."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from pulse.errors import PulseError, TopicError
from pulse.local.child_process import PulseChild
from pulse.topics import wait_committed
from schemas import KafkaSettings, Topics


class WorkerProcess(PulseChild):
    """Runs `pulse process` on prefixed topics with app id `<prefix>app` (unless `processor` names one);
    `processor` holds extra `PULSE_PROCESSOR__*` settings by lower-case name. Output goes to `log`."""

    def __init__(
        self,
        kafka: KafkaSettings,
        prefix: str,
        partitions: int,
        log: Path,
        processor: Mapping[str, object] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.kafka = kafka
        self.topics = Topics.prefixed(prefix)
        self.app_id = str((processor or {}).get("app_id", f"{prefix}app"))
        environment = {
            **(os.environ if env is None else env),
            "PULSE_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
            "PULSE_TOPICS__PREFIX": prefix,
            "PULSE_TOPICS__EVENT_PARTITIONS": str(partitions),
            "PULSE_PROCESSOR__APP_ID": self.app_id,
            **{f"PULSE_PROCESSOR__{k.upper()}": _env_value(v) for k, v in (processor or {}).items()},
        }
        super().__init__("the stream worker", ["process"], environment, log)

    def wait_drained(self, timeout_s: float) -> None:
        """Until the group has committed every input message (outputs are flushed before each commit)."""
        inputs = list(self.topics.processor_inputs)
        try:
            wait_committed(self.kafka, self.app_id, inputs, timeout_s, "the worker", self.check_alive)
        except TopicError as exc:
            raise PulseError(f"{exc}: {self.log_tail()}") from exc


def _env_value(value: object) -> str:
    """How pydantic-settings reads a value back from the environment: JSON for collections."""
    return json.dumps(value) if isinstance(value, dict | list) else str(value)
