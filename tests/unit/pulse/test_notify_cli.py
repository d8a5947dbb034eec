"""`pulse notify`'s wiring, with the notifier's run and the topic set-up stood in for (no broker)."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from click.testing import CliRunner

from pipeline.notify.notifier import Notifier, NotifierStats
from pulse.cli import main
from pulse.commands import notify as notify_command


@pytest.fixture
def frozen_at_run(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """How many objects were frozen out of the cycle collector's reach when the notifier's run began."""
    seen: list[int] = []

    async def run(self: Notifier, should_stop: Callable[[], bool]) -> NotifierStats:
        seen.append(gc.get_freeze_count())
        return NotifierStats()

    def no_topics(*args: Any, **kwargs: Any) -> list[str]:
        return []

    monkeypatch.setattr(Notifier, "run", run)
    monkeypatch.setattr(notify_command, "ensure_topics", no_topics)
    gc.unfreeze()
    yield seen
    gc.unfreeze()


def test_what_start_up_made_is_frozen_before_the_alerts_come(frozen_at_run: list[int]) -> None:
    result = CliRunner(env={"PULSE_TOPICS__REPLICATION_FACTOR": "1"}).invoke(main, ["notify"])
    assert result.exit_code == 0, result.output
    assert len(frozen_at_run) == 1
    assert frozen_at_run[0] > 10_000  # the modules and settings of the command, not a handful
