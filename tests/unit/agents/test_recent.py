from __future__ import annotations

from agents import RecentIds
from agents.platforms import Delivery
from agents.recent import UnsettledDeliveries
from schemas import validate
from tests.events import wire


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


def delivery(delivery_id: str, stamped: str = "first") -> Delivery:
    return Delivery(delivery_id, (validate(wire(event_id=f"{delivery_id}:{stamped}")),))


def test_a_held_delivery_is_sent_as_held_once_then_its_own() -> None:
    held = UnsettledDeliveries(ttl_s=60, max_ids=10, clock=Clock())
    held.hold(delivery("d1"))
    assert held.settle(delivery("d1", "again")) == delivery("d1")
    assert held.settle(delivery("d1", "again")) == delivery("d1", "again"), "settled: no longer held"
    assert held.settle(delivery("d2")) == delivery("d2")


def test_held_deliveries_are_bounded_and_expire() -> None:
    clock = Clock()
    held = UnsettledDeliveries(ttl_s=60, max_ids=2, clock=clock)
    for key in ("a", "b", "c"):
        held.hold(delivery(key))
    assert len(held) == 2 and held.settle(delivery("a", "new")) == delivery("a", "new")
    clock.now = 61
    assert held.settle(delivery("c", "new")) == delivery("c", "new") and len(held) == 0
