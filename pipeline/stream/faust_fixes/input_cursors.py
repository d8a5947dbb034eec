"""Where the agent stands in each input partition: the next offset it must process, and the rewinds that
mend messages lost on the way to it.

Our input topics are neither compacted nor transactional, so a partition's offsets are consecutive and
the agent must see every one of them, in order. faust loses some on the way around a rebalance: records
fetched and then dropped (flow stopped, a new generation, a partition not active yet), or a delivery
abandoned when flow is suspended. Its drain loop then records the jump as a "gap" that a commit may pass,
and the agent, seeing the next message, counts it. Seen under load after a kill -9: comments missing
for good from their windows (`tests/integration/test_processor.py`).

So every message is admitted here before the agent processes it:
- at the cursor: processed, and the cursor moves on;
- below it: processed already since the partition was sought (read again by a rewind): skipped;
- above it: the messages in between were lost. It is held (not processed), and the partition is rewound
  to the cursor: the consumer seeks there and lets no record of the partition through until the one at
  the cursor comes back.
A loss at the tail shows no later message: a partition whose fetch position stands past its cursor with
none of its messages in flight, twice in a row, is rewound too (`stalled`). A commit never passes the
cursor, whatever faust acked or counted as a gap.

The one loss a rewind cannot mend: messages deleted from the log (retention, or DeleteRecords) before the
agent reached them. The consumer checks where the log starts before it seeks, and moves the cursor up to
it (`skip_deleted`): those messages are gone, and reading from the cursor would fail (seen: a worker
restarted after its committed offset was deleted rewound every 4 s, for good, processing nothing).

No faust and no I/O here: `pipeline.stream.app`'s consumer does the seeking and the committing.
"""

from __future__ import annotations

import enum
from collections.abc import Hashable


class Admission(enum.Enum):
    PROCESS = "process"  # the next message of its partition
    SKIP = "skip"  # processed already since the partition was sought
    HOLD = "hold"  # after a hole, or in a partition not sought yet: not processed
    REWIND = "rewind"  # after a hole not asked for yet: not processed; the caller seeks to the cursor


class Passage(enum.Enum):
    ON = "on"  # goes on to the agent
    DROP = "drop"  # fetched before a rewind's seek: dropped, it comes again
    REREAD = "reread"  # the first record a rewind reads again: goes on, and the rewind is over


class InputCursors:
    """Per input partition (any hashable key): the next offset to process, and a rewind in progress."""

    def __init__(self) -> None:
        self._next: dict[Hashable, int] = {}
        self._rewinds: dict[Hashable, int] = {}  # partition -> offset it is being read again from
        self._suspects: dict[Hashable, int] = {}  # partition -> its cursor when last seen stalled

    def start(self, tp: Hashable, offset: int) -> None:
        """The partition was sought to `offset`: its processing (re)starts there."""
        self._next[tp] = offset
        self._rewinds.pop(tp, None)
        self._suspects.pop(tp, None)

    def forget(self, tp: Hashable) -> None:
        """The partition was revoked."""
        self._next.pop(tp, None)
        self._rewinds.pop(tp, None)
        self._suspects.pop(tp, None)

    def skip_deleted(self, tp: Hashable, log_start: int) -> int:
        """The partition's log now starts at `log_start`: how many messages from the cursor on were
        deleted unprocessed (0 if none). Those are skipped: the cursor moves up to `log_start`, and the
        partition is read again from there (the caller seeks), letting none of its records through until
        that one comes."""
        expected = self._next.get(tp)
        if expected is None or log_start <= expected:
            return 0
        self._next[tp] = self._rewinds[tp] = log_start
        self._suspects.pop(tp, None)
        return log_start - expected

    def next_offset(self, tp: Hashable) -> int | None:
        return self._next.get(tp)

    def admit(self, tp: Hashable, offset: int) -> Admission:
        """What the agent does with the message at `offset`; PROCESS moves the cursor past it."""
        expected = self._next.get(tp)
        if expected is None:
            return Admission.HOLD  # read again from where it is sought to, once it is
        if offset == expected:
            self._next[tp] = offset + 1
            return Admission.PROCESS
        if offset < expected:
            return Admission.SKIP
        if self._rewinds.get(tp) == expected:
            return Admission.HOLD  # its rewind is under way
        self._rewinds[tp] = expected
        return Admission.REWIND

    def stalled(self, tp: Hashable, fetched_to: int | None, in_flight: bool) -> int | None:
        """Called every few seconds per partition, with where its fetching stands and whether any of its
        messages are on their way to the agent. The offset to rewind to if the messages from the cursor on
        were fetched and lost: seen so at two calls in a row with the cursor unmoved (between two calls
        records fetched a moment ago may still be on their way to the agent)."""
        expected = self._next.get(tp)
        if expected is None or fetched_to is None or fetched_to <= expected or in_flight:
            self._suspects.pop(tp, None)
            return None
        if self._suspects.get(tp) != expected:
            self._suspects[tp] = expected
            return None
        del self._suspects[tp]
        self._rewinds[tp] = expected
        return expected

    def passage(self, tp: Hashable, offset: int) -> Passage:
        """Whether a fetched record goes on to the agent: during a rewind, only from the offset it rewinds
        to (the records before that one are those after the hole, and are fetched again)."""
        rewind = self._rewinds.get(tp)
        if rewind is None:
            return Passage.ON
        if offset != rewind:
            return Passage.DROP
        del self._rewinds[tp]
        return Passage.REREAD

    def committable(self, tp: Hashable, offset: int | None) -> int | None:
        """The offset to commit given faust's `offset`: never past the cursor; None while not sought."""
        expected = self._next.get(tp)
        if offset is None or expected is None:
            return None
        return min(offset, expected)
