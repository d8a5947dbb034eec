from __future__ import annotations

from agents import RecentIds


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_duplicates_within_the_window_are_seen() -> None:
    clock = Clock()
    recent = RecentIds(ttl_s=60, max_ids=100, clock=clock)
    assert recent.seen("a") is False
    assert recent.seen("a") is True
    clock.now = 61
    assert recent.seen("a") is False, "forgotten after the window"


def test_memory_is_bounded_oldest_forgotten_first() -> None:
    recent = RecentIds(ttl_s=1e9, max_ids=3, clock=Clock())
    for key in "abcd":
        recent.seen(key)
    assert len(recent) == 3
    assert recent.seen("a") is False and recent.seen("d") is True


def test_forget_lets_a_retry_through() -> None:
    recent = RecentIds(ttl_s=60, max_ids=10, clock=Clock())
    recent.seen("x")
    recent.forget("x")
    assert recent.seen("x") is False
