"""The end-to-end bench's bookkeeping, the parts that need no broker."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from pulse.cli import main
from pulse.errors import TopicError
from pulse.local.local_pipeline import LocalPipeline


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
    args = [
        "--state-dir",
        str(tmp_path),
        "bench",
        "--events",
        "1000",
        "--single-events",
        "100",
        "--no-baselines",
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code != 0
    said = "the broker does not answer" if cleanup_fails else "no worker could start"
    assert said in result.output or said in str(result.exception)
    assert not list((tmp_path / "bench").glob("e2e-*.ndjson"))
