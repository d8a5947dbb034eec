"""The chaos run's input: paced, in blocks of what is due, at a trickle near the end until released."""

from __future__ import annotations

import io
import time

from pulse.chaos import PacedLines


def lines(n: int) -> io.BytesIO:
    return io.BytesIO(b"".join(b'{"n": %d}\n' % i for i in range(n)))


def test_every_line_comes_once_in_order_at_about_the_pace() -> None:
    ticks = []
    feed = PacedLines(lines(300), rate=1_000, slow_from=10_000, released=lambda: True,
                      tick=lambda: ticks.append(1))  # fmt: skip
    started = time.monotonic()
    got = list(feed)
    took = time.monotonic() - started
    assert got == [b'{"n": %d}\n' % i for i in range(300)]
    assert 0.2 <= took < 2.0  # 300 lines at 1,000/s
    assert len(ticks) >= 2


def test_the_end_goes_at_a_trickle_until_released() -> None:
    released = False
    feed = PacedLines(lines(2_000), rate=2_000, slow_from=100, released=lambda: released, tick=lambda: None)
    handed = 0
    started = time.monotonic()
    while time.monotonic() - started < 0.5:
        handed += len(feed.readlines())
    assert 100 <= handed < 250  # 100 at full pace, then 5% of 2,000/s for at most 0.45 s
    released = True
    rest = list(feed)
    assert handed + len(rest) == 2_000


def test_an_empty_file_ends_at_once() -> None:
    feed = PacedLines(io.BytesIO(b""), rate=10, slow_from=0, released=lambda: False, tick=lambda: None)
    assert feed.readlines() == []
