from __future__ import annotations

from pipeline.stream.faust_fixes.recovery_watch import RecoveryProgress, stalled_for


def progress(*, recovering: bool = True, started_at: float | None = 100.0, remaining: dict[str, int] | None = None,
             received_at: tuple[float, ...] = ()) -> RecoveryProgress:  # fmt: skip
    return RecoveryProgress(
        recovering, started_at, {"c/0": 5} if remaining is None else remaining, received_at
    )


def test_a_recovery_that_received_nothing_is_stalled_since_it_started() -> None:
    assert stalled_for(progress(), now=130.0) == 30.0


def test_the_last_record_received_on_any_partition_counts_as_progress() -> None:
    assert stalled_for(progress(received_at=(110.0, 125.0)), now=130.0) == 5.0


def test_a_recovery_with_nothing_left_to_read_or_no_recovery_at_all_is_not_stalled() -> None:
    assert stalled_for(progress(remaining={}), now=500.0) == 0.0
    assert stalled_for(progress(remaining={"c/0": 0}), now=500.0) == 0.0
    assert stalled_for(progress(recovering=False), now=500.0) == 0.0
    assert stalled_for(progress(started_at=None), now=500.0) == 0.0
