"""`pulse run`'s supervision of its pieces, on stand-ins for the child processes (no broker needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.warehouse.dashboard import DashboardSettings
from pipeline.warehouse.table_sink import SinkSettings
from pulse.errors import PulseError
from pulse.local import local_pipeline
from pulse.local.child_process import PulseChild
from pulse.local.local_pipeline import RESTART_DELAYS_S, RESTARTS, LocalPipeline, RunOptions
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


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def pipeline_of(tmp_path: Path, clock: Clock) -> tuple[LocalPipeline, Piece, Piece]:
    options = RunOptions(workers=1, notify=False)
    pipeline = LocalPipeline(Settings(state_dir=tmp_path), options, tmp_path, clock=clock)
    worker, loader = Piece("the stream worker", tmp_path / "w.log"), Piece("the loader", tmp_path / "s.log")
    pipeline.workers.append(worker)  # type: ignore[arg-type]  # a stand-in for a WorkerProcess
    pipeline.children += [worker, loader]
    return pipeline, worker, loader


@pytest.mark.parametrize("which", ["worker", "loader"])
def test_a_piece_that_exits_with_an_error_is_started_again_after_growing_delays(
    tmp_path: Path, which: str
) -> None:
    clock = Clock()
    pipeline, worker, loader = pipeline_of(tmp_path, clock)
    piece = worker if which == "worker" else loader
    pipeline.check()
    assert piece.starts == 0, "a running piece is left alone"
    for restart, delay in zip(range(1, RESTARTS + 1), RESTART_DELAYS_S, strict=True):
        piece.code = -9  # killed
        pipeline.check()
        if delay:
            assert piece.starts == restart - 1, "not before its delay"
            clock.now += delay - 0.01
            pipeline.check()
            assert piece.starts == restart - 1
            clock.now += 0.01
        pipeline.check()
        assert piece.starts == restart and piece.exited() is None
    assert pipeline.restarts == {piece.name: RESTARTS}
    piece.code = 1
    with pytest.raises(PulseError, match=f"{piece.name} exited with 1"):
        pipeline.check()
    assert piece.starts == RESTARTS


def test_a_piece_that_stopped_cleanly_ends_the_run(tmp_path: Path) -> None:
    pipeline, worker, loader = pipeline_of(tmp_path, Clock())
    worker.code = 0  # stopped by someone: not a failure to mend
    with pytest.raises(PulseError, match="the stream worker exited with 0"):
        pipeline.check()
    assert (worker.starts, loader.starts) == (0, 0)


def test_a_notifier_started_later_starts_at_the_first_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def on_cluster(settings: Settings) -> Settings:  # no cluster to ask
        return settings.model_copy(
            update={"topics": settings.topics.model_copy(update={"replication_factor": 1})}
        )

    monkeypatch.setattr(local_pipeline, "on_cluster", on_cluster)
    monkeypatch.setattr(local_pipeline, "ensure_topics", lambda *args: [])
    pipeline, worker, loader = pipeline_of(tmp_path, Clock())
    notifier = Piece("the notifier", tmp_path / "n.log")
    pipeline.notifier = notifier
    pipeline.children.append(notifier)
    monkeypatch.setattr(pipeline, "plan", lambda: pipeline.children)
    pipeline.start(notifier_later=True)
    assert (worker.starts, loader.starts, notifier.starts) == (1, 1, 0)
    pipeline.check()
    assert (worker.starts, loader.starts, notifier.starts) == (1, 1, 1)
    pipeline.check()
    assert notifier.starts == 1, "started once"
    assert pipeline.restarts == {}, "a start left for later is no restart"


def test_the_loader_gets_every_sink_setting_as_resolved_here(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path, sink={"niceness": 3, "commit_timeout_s": 7.5, "batch_rows": 9})
    env = LocalPipeline(settings, RunOptions(workers=1, notify=False), tmp_path).child_env()
    passed = {
        k.removeprefix("PULSE_SINK__").lower(): None if v == "null" else v  # as `load()` reads "null"
        for k, v in env.items()
        if k.startswith("PULSE_SINK__")
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


def test_a_piece_that_dies_of_the_stop_signal_while_starting_stopped_cleanly(tmp_path: Path) -> None:
    """A piece started again just before the end of a run may get the SIGTERM before its handler is in
    place: it dies of it (-15), having taken no work yet; that is no failure of the run."""
    pipeline = LocalPipeline(Settings(state_dir=tmp_path), RunOptions(workers=1, notify=False), tmp_path)
    starting = PulseChild(
        "the notifier", ["0", "--bind", "127.0.0.1"], {}, tmp_path / "n.log", module="http.server"
    )
    pipeline.children.append(starting.start())  # no SIGTERM handler: it dies of the signal
    assert pipeline.stop() == {"the notifier": 0}
    assert starting.exited() == -15
