"""The faust worker the stream processors run in (see `PulseWorker`), and how it is started."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Mapping
from typing import Any

import faust

from pipeline.errors import RecoveryStalled
from pipeline.stream.faust_fixes.consumer import ProcessedAckConsumer, consumer_of, or_dash
from pipeline.stream.faust_fixes.recovery_watch import RecoveryProgress, stalled_for

log = logging.getLogger(__name__)

RECOVERY_CHECK_INTERVAL_S = 5.0
# mode lets the closed loop run once more, for callbacks that closing transports scheduled, by sleeping
# 1 s in it: a handful of loop turns is what they need.
LAST_TURNS_S = 0.05
FULL_COLLECTION_AFTER = 1_000  # collections of the middle generation (Python: 10)


class PulseWorker(faust.Worker):
    """faust's worker without its terminal spinner, and with a watch on its table recovery.

    The spinner: to spin on every log record, faust sets the root logger to DEBUG whenever the level asked
    for is WARNING or above, so every debug call of faust and aiokafka built a record (faust's recovery
    logs two per changelog record): seen as most of a standby worker's CPU, and a few percent of an
    active one's.

    The watch (see `pipeline.stream.faust_fixes.recovery_watch`) runs from the worker's start, as a recovery blocks faust's
    own timers until it completes.

    The shutdown: by the time mode's worker lets its loop run a last time, faust has flushed, committed
    and closed everything; mode then slept 1 s in it (`_sentinel_task`), half of a 400k-event replay's
    teardown (`pulse run --exit-when-done` waits for the worker to exit). `LAST_TURNS_S` instead."""

    def __init__(self, app: faust.App, *args: Any, recovery_stall_s: float, **kwargs: Any) -> None:
        super().__init__(app, *args, **kwargs)
        self.spinner = None
        self.recovery_stall_s = recovery_stall_s

    async def on_first_start(self) -> None:
        await super().on_first_start()
        self.add_future(self._watch_recovery())

    async def _watch_recovery(self) -> None:
        while not self.should_stop:
            await asyncio.sleep(RECOVERY_CHECK_INTERVAL_S)
            try:
                stalled, stats = self._recovery_stall()
                if stalled < self.recovery_stall_s:
                    continue
                consumer = consumer_of(self.app)
                left = "; ".join(recovery_state(consumer, tp, stat) for tp, stat in sorted(stats.items()))
            except Exception:  # it reads faust's internals: a change there must not stop the worker
                log.exception("the recovery watch could not read the recovery's state")
                continue
            log.error(
                "state recovery received no changelog record for %.0f s with records left to read (%s): "
                "stopping this worker, to be started again (PULSE_PROCESSOR__RECOVERY_STALL_S)",
                stalled, left,
            )  # fmt: skip
            await self.app.crash(RecoveryStalled(f"no changelog record for {stalled:.0f} s ({left})"))
            return

    async def _sentinel_task(self) -> None:
        await asyncio.sleep(LAST_TURNS_S)

    def _recovery_stall(self) -> tuple[float, Mapping[Any, Any]]:
        """Seconds the recovery has gone without progress, and faust's figures per changelog partition."""
        recovery = self.app.tables.recovery  # type: ignore[attr-defined]  # not in TableManagerT
        stats = recovery.active_stats()
        progress = RecoveryProgress(
            recovering=recovery.in_recovery,
            started_at=recovery._recovery_started_at,  # faust keeps no public view of these
            remaining={tp: stat.remaining for tp, stat in stats.items()},
            received_at=recovery._active_events_received_at.values(),
        )
        return stalled_for(progress, time.monotonic()), stats


def recovery_state(consumer: ProcessedAckConsumer, tp: Any, stat: Any) -> str:
    """Where a changelog partition's recovery stands, for the log: what tells records fetched and lost
    (fetch position past the last record applied) from records never fetched (position right after it;
    paused or not active)."""
    if tp in consumer._paused_partitions:  # faust keeps no public view of these sets
        fetching = "paused"
    elif tp in (consumer._active_partitions or set()):
        fetching = "fetched"
    else:
        fetching = "not fetched"
    return (
        f"{tp.topic}/{tp.partition}: applied up to {stat.offset} of {stat.highwater}, {stat.remaining} left, "
        f"fetch position {or_dash(consumer._fetch_position(tp))}, {fetching}"
    )


def run_worker(app: faust.App, log_level: str, recovery_stall_s: float) -> None:
    """Runs a worker until SIGTERM/SIGINT (then commits and stops cleanly), or until its state recovery
    stalls (then it exits with an error, for its supervisor to start it again).

    What exists by now (modules, faust, the app) lives as long as the process: frozen out of the cycle
    collector's reach, so its full collections walk only what processing keeps. Full collections come
    after 1,000 collections of the middle generation instead of 10 (`FULL_COLLECTION_AFTER`): windows and
    clocks are untracked, so Python's own rule (a full collection once a quarter as many objects as the
    last one kept have been promoted) fired every few thousand objects, and each walked the big dicts and
    heaps of every partition: 0.5 s of the realistic bench's 400k events, against none. Cycles are rare
    here (the processing state holds none); those of the libraries wait a little longer."""
    worker = PulseWorker(app, loglevel=log_level, quiet=True, recovery_stall_s=recovery_stall_s)
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_AFTER)
    worker.execute_from_commandline()
