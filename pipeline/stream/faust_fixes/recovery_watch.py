"""Whether a worker's table recovery has stopped making progress.

Before a worker processes a partition it was given, faust reads the partition's changelog up to its end.
If no changelog record arrives, faust waits for ever and only warns every few seconds. Seen once, in the
end-to-end bench with two workers: after the rebalance that gave it two partitions, a worker received no
changelog record for 3 minutes while the other worker went on; the messages of its partitions were never
processed. The cause is not known (faust's recovery hangs are a known family upstream).

A recovery that has changelog records left to read and has received none for a while is stalled: the
worker then stops with an error, so that its supervisor starts it again and the group hands out its
partitions afresh (a new process reads the changelog from scratch). A long recovery that keeps receiving
records is not stalled, however long it takes.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RecoveryProgress:
    """What the watch needs from faust's recovery, read at one moment (monotonic seconds)."""

    recovering: bool
    started_at: float | None  # when this recovery started
    remaining: Mapping[Hashable, int]  # changelog records left to read per partition
    received_at: Iterable[float]  # when a record last arrived, per partition that received one


def stalled_for(progress: RecoveryProgress, now: float) -> float:
    """Seconds since the recovery last made progress (started, or received a changelog record), while it
    has records left to read; 0 when it is not stalled."""
    if not progress.recovering or progress.started_at is None:
        return 0.0
    if not any(left > 0 for left in progress.remaining.values()):
        return 0.0
    last = max([progress.started_at, *progress.received_at])
    return max(0.0, now - last)
