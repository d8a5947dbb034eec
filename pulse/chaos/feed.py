"""The input of a chaos run: a file's lines handed to the replay at a steady pace, as a live source would
send them, so that faults strike while there is work in flight. From a point near the end the lines go at
a trickle until every fault has been recovered from, so that no fault strikes an idle pipeline and none
waits long for input to show that the pipeline is back at work."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import BinaryIO

TRICKLE = 0.05  # of the pace, from `slow_from` until released
MAX_BLOCK = 1_024  # lines handed over at once
TICK_S = 0.1  # the longest wait between two calls of `tick`


class PacedLines:
    """A file's lines at about `rate` lines/s, in blocks of those due by now (`readlines`, which the replay
    reads a file with); from line `slow_from` (from 0) at `TRICKLE` of that pace until `released()`.
    Calls `tick()` (the pipeline's supervision) at least every `TICK_S` while it waits."""

    def __init__(
        self,
        source: BinaryIO,
        *,
        rate: float,
        slow_from: int,
        released: Callable[[], bool],
        tick: Callable[[], None],
    ) -> None:
        self._lines: Iterator[bytes] = iter(source)
        self.rate = rate
        self.slow_from = slow_from
        self.released = released
        self.tick = tick
        self.handed = 0
        self._due = 0.0  # lines due by `_at`
        self._at: float | None = None

    def readlines(self, _hint: int = -1) -> list[bytes]:
        """The lines due by now (at least one, waiting for it); [] at the end of the file."""
        while True:
            self.tick()
            now = time.monotonic()
            if self._at is None:
                self._at = now
            slow = self.handed >= self.slow_from and not self.released()
            self._due += (now - self._at) * self.rate * (TRICKLE if slow else 1.0)
            self._at = now
            ready = min(int(self._due) - self.handed, MAX_BLOCK)
            if ready >= 1:
                block = [line for _, line in zip(range(ready), self._lines, strict=False)]
                self.handed += len(block)
                return block
            time.sleep(TICK_S)

    def __iter__(self) -> Iterator[bytes]:
        while block := self.readlines():
            yield from block
