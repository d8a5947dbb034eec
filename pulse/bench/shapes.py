"""The benchmarks' event files, in the shape of real traffic or deliberately dense.

A stream processor with per-key state pays per key touched, not per event: so the data's shape decides the figures, and the default is the shape real
publics have. `realistic`: tens of communities posting all the time, thousands of posts whose popularity
is heavy-tailed and fades over hours, likes and reposts mostly in the first hours, comments spread over
hours, a community that answers a part of its subscribers' comments (some in time, some late, some never);
about 2 events per (post, minute) window, a fifth of them subscriber comments, each its own SLA clock.
On top, what real inputs carry: 3% of the lines repeated later (redeliveries), a few lines out of order
within the allowed lateness, and a few malformed lines. `dense`: the simulator's old benchmark shape, a
few busy posts per community (hundreds of events per window), which hides every per-key cost; kept to
compare with.

Both come from the simulator with a fixed seed, restamped to end now, so live traffic continues them.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import msgspec

from agents import Simulator, SimulatorSettings
from schemas import FOLLOW_TYPES, EventType, encode_event

Shape = Literal["realistic", "dense"]
SHAPES: dict[str, SimulatorSettings] = {
    "realistic": SimulatorSettings(
        communities=30,
        posts_per_community_per_hour=24,
        events_per_sim_s=20,
        like_share=0.72,
        comment_share=0.22,
        answer_share=0.6,
        answer_median_s=1_200,
        seed=9,
    ),
    "dense": SimulatorSettings(communities=50, events_per_sim_s=500, seed=9),
}
DUPLICATE_SHARE = {"realistic": 0.03, "dense": 0.0}
MALFORMED_PER_MILLION = {"realistic": 15, "dense": 0}
_COUNTED = frozenset({EventType.LIKE, EventType.UNLIKE, EventType.COMMENT, EventType.REPOST})


@dataclass(frozen=True, slots=True)
class FileShape:
    """What a benchmark file holds: the figures that decide what processing it costs."""

    shape: str
    lines: int
    events: int  # unique, valid
    duplicates: int
    malformed: int
    posts: int
    counted: int  # likes, unlikes, comments and reposts: what the windows count
    window_rows: int  # (post, minute) windows of those: engagement_minute rows
    subscriber_comments: int  # each an SLA clock
    span_h: float  # of event time

    @property
    def events_per_window_row(self) -> float:
        return self.counted / self.window_rows if self.window_rows else 0.0


def write_file(path: Path, shape: Shape, events: int) -> FileShape:
    """Writes `events` unique events in `shape` as NDJSON (with the shape's duplicates and malformed lines
    on top), stamped so the newest event is now."""
    settings = SHAPES[shape]
    stream = list(Simulator(settings).events(count=events))
    shift = int(time.time() * 1000) - stream[-1].ts_ms
    rng = random.Random(settings.seed)
    duplicates = int(events * DUPLICATE_SHARE[shape])
    malformed = events * MALFORMED_PER_MILLION[shape] // 1_000_000
    lines = [encode_event(msgspec.structs.replace(e, ts=e.ts_ms + shift)) for e in stream]
    _disorder(lines, rng, share=0.01, reach=50)
    # A redelivery comes some lines after the original (here up to a few thousand lines later).
    for _ in range(duplicates):
        at = rng.randrange(len(lines))
        lines.insert(min(len(lines), at + rng.randint(1, 5_000)), lines[at])
    for i in range(malformed):
        bad = (
            b'{"event_id": "broken-' + str(i).encode() + b'", "type": "like"',
            b"not json at all",
            b'{"type": 7}',
        )
        lines.insert(rng.randrange(len(lines)), bad[i % 3])
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as out:
        for line in lines:
            out.write(line + b"\n")
    windows = Counter((e.community_id, e.post_id, e.ts_ms // 60_000) for e in stream if e.type in _COUNTED)
    return FileShape(
        shape=shape,
        lines=len(lines),
        events=len(stream),
        duplicates=duplicates,
        malformed=malformed,
        posts=len({(e.community_id, e.post_id) for e in stream if e.type not in FOLLOW_TYPES}),
        counted=sum(windows.values()),
        window_rows=len(windows),
        subscriber_comments=sum(1 for e in stream if e.type is EventType.COMMENT and not e.by_community),
        span_h=(stream[-1].ts_ms - stream[0].ts_ms) / 3_600_000,
    )


def _disorder(lines: list[bytes], rng: random.Random, share: float, reach: int) -> None:
    """Swaps `share` of the lines with one up to `reach` lines later: out of order, but well within the
    allowed lateness (the simulator's events are seconds apart in a busy stream)."""
    for _ in range(int(len(lines) * share)):
        at = rng.randrange(len(lines) - 1)
        other = min(len(lines) - 1, at + rng.randint(1, reach))
        lines[at], lines[other] = lines[other], lines[at]
