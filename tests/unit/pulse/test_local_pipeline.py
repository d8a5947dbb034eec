"""`pulse run`'s supervision of its pieces, on stand-ins for the child processes (no broker needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.warehouse.dashboard import DashboardSettings
from pipeline.warehouse.table_sink import SinkSettings
from pulse.errors import PulseError
from pulse.local.child_process import PulseChild
from pulse.local.local_pipeline import WORKER_RESTARTS, LocalPipeline, RunOptions
from pulse.settings import Settings


class Piece(PulseChild):
    """A child whose process 'exits' with `code` whenever asked to; `start()` brings it back."""

    def __init__(self, name: str, log: Path) -> None:
        super().__init__(name, ["nothing"], {}, log)
        self.code: int | None = None
        self.starts = 0

    def start(self) -> PulseChild:
        self.starts += 1
        self.code = None
        return self

    def exited(self) -> int | None:
        return self.code


def pipeline_of(tmp_path: Path) -> tuple[LocalPipeline, Piece, Piece]:
    pipeline = LocalPipeline(Settings(state_dir=tmp_path), RunOptions(workers=1, notify=False), tmp_path)
    worker, loader = Piece("the stream worker", tmp_path / "w.log"), Piece("the loader", tmp_path / "s.log")
    pipeline.workers.append(worker)  # type: ignore[arg-type]  # a stand-in for a WorkerProcess
    pipeline.children += [worker, loader]
    return pipeline, worker, loader


def test_a_worker_that_exits_with_an_error_is_started_again_a_few_times(tmp_path: Path) -> None:
    pipeline, worker, _ = pipeline_of(tmp_path)
    pipeline.check()
    assert worker.starts == 0, "a running worker is left alone"
    for restart in range(1, WORKER_RESTARTS + 1):
        worker.code = 1
        pipeline.check()
        assert worker.starts == restart
    worker.code = 1
    with pytest.raises(PulseError, match="the stream worker exited with 1"):
        pipeline.check()
    assert worker.starts == WORKER_RESTARTS


def test_a_worker_that_stopped_cleanly_or_a_dead_loader_ends_the_run(tmp_path: Path) -> None:
    pipeline, worker, loader = pipeline_of(tmp_path)
    worker.code = 0  # stopped by someone: not a failure to mend
    with pytest.raises(PulseError, match="the stream worker exited with 0"):
        pipeline.check()
    worker.code = None
    loader.code = 1
    with pytest.raises(PulseError, match="the loader exited with 1"):
        pipeline.check()
    assert (worker.starts, loader.starts) == (0, 0)


def test_the_loader_gets_every_sink_setting_as_resolved_here(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path, sink={"niceness": 3, "commit_timeout_s": 7.5, "batch_rows": 9})
    env = LocalPipeline(settings, RunOptions(workers=1, notify=False), tmp_path).child_env()
    passed = {
        k.removeprefix("PULSE_SINK__").lower(): v for k, v in env.items() if k.startswith("PULSE_SINK__")
    }
    assert SinkSettings.model_validate(passed) == settings.sink


def test_the_dashboard_gets_its_settings_as_resolved_here(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path, dashboard={"port": 18_123, "refresh_s": 5, "host": "0.0.0.0"})
    env = LocalPipeline(settings, RunOptions(dashboard=True), tmp_path).child_env()
    passed = {
        k.removeprefix("PULSE_DASHBOARD__").lower(): v
        for k, v in env.items()
        if k.startswith("PULSE_DASHBOARD__")
    }
    assert DashboardSettings.model_validate(passed) == settings.dashboard
