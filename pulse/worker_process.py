"""A `pulse process` worker as a child process: for `pulse run`, benchmarks and integration tests, which
need the real worker (its own process, killable with SIGKILL) rather than an app object in their own
event loop."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from pathlib import Path

from pulse.child_process import PulseChild
from pulse.errors import PulseError, TopicError
from pulse.topics import group_lag
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
        inputs = [self.topics.likes, self.topics.comments, self.topics.reposts]
        deadline = time.monotonic() + timeout_s
        lag: dict[str, int] = {}
        error: TopicError | None = None
        while time.monotonic() < deadline:
            process = self._running()
            if process.poll() is not None:
                raise PulseError(f"the worker exited with {process.returncode}: {self.log_tail()}")
            try:
                lag = group_lag(self.kafka, self.app_id, inputs)
                if sum(lag.values()) == 0:
                    return
            except TopicError as exc:
                error = exc  # a fresh broker has no group coordinator yet: ask again
            time.sleep(0.25)
        raise PulseError(
            f"the worker did not drain its input in {timeout_s:.0f} s (messages not committed: {lag}; "
            f"last error reading the lag: {error}): {self.log_tail()}"
        )

    def peak_mb(self) -> float:
        """The worker's peak resident memory (Linux)."""
        for line in Path(f"/proc/{self._running().pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")


def _env_value(value: object) -> str:
    """How pydantic-settings reads a value back from the environment: JSON for collections."""
    return json.dumps(value) if isinstance(value, dict | list) else str(value)
