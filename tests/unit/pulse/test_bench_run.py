"""The end-to-end bench's bookkeeping, the parts that need no broker."""

from __future__ import annotations

from pathlib import Path

import pytest

from pulse.bench.end_to_end import run_end_to_end
from pulse.errors import TopicError
from pulse.local.local_pipeline import LocalPipeline
from pulse.settings import Settings


@pytest.mark.parametrize("cleanup_fails", [False, True])
def test_a_run_that_fails_to_start_leaves_no_event_file_behind(
    cleanup_fails: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse_to_start(self: LocalPipeline) -> None:
        (tmp_path / "bench").mkdir(exist_ok=True)
        assert list((tmp_path / "bench").glob("e2e-*.ndjson")), "the events were written before the start"
        raise RuntimeError("no worker could start")

    def delete(self: LocalPipeline) -> None:
        if cleanup_fails:
            raise TopicError("the broker does not answer")

    monkeypatch.setattr(LocalPipeline, "start", refuse_to_start)
    monkeypatch.setattr(LocalPipeline, "delete_topics_and_groups", delete)
    with pytest.raises((RuntimeError, TopicError)):
        run_end_to_end(
            Settings(state_dir=tmp_path), batch_events=10, events=200, live_s=0, live_rate=1, partitions=1
        )
    assert not list((tmp_path / "bench").glob("e2e-*.ndjson"))
