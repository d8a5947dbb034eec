"""WaitPace: reads of a lag far apart while the end is far, close together near it."""

from __future__ import annotations

import pytest

from pulse.wait_pace import WaitPace


def test_idle_until_something_moves() -> None:
    pace = WaitPace(idle_s=0.1)
    assert pace.next_s(0.0, 1_000) == 0.1
    assert pace.next_s(5.0, 1_000) == 0.1  # nothing committed for 5 s: still read as often as ever


def test_a_share_of_the_rest_at_the_pace_so_far() -> None:
    pace = WaitPace(min_s=0.05, max_s=1.0, share=0.25)
    pace.next_s(10.0, 1_000)
    # 400 done in 2 s: the other 600 take 3 s at that pace, a quarter of it is 0.75 s
    assert pace.next_s(12.0, 600) == pytest.approx(0.75)
    assert pace.next_s(14.0, 200) == pytest.approx(0.25)  # 800 in 4 s: 1 s left


def test_kept_within_its_bounds() -> None:
    pace = WaitPace(min_s=0.05, max_s=1.0, share=0.25)
    pace.next_s(0.0, 1_000_000)
    assert pace.next_s(1.0, 999_000) == 1.0  # the end is ~17 min away
    assert pace.next_s(2.0, 10) == 0.05  # ... and then almost there


def test_a_growing_lag_starts_the_estimate_again() -> None:
    pace = WaitPace(idle_s=0.1, min_s=0.05, max_s=1.0, share=0.25)
    pace.next_s(0.0, 1_000)
    pace.next_s(1.0, 500)
    assert pace.next_s(2.0, 5_000) == 0.1  # more input came: the pace so far says nothing
    assert pace.next_s(4.0, 4_000) == 1.0  # 1,000 in 2 s from there: 8 s left, read again in 1 s
