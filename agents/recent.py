"""Remembering recent deliveries: which ids were seen, to drop platform redeliveries and duplicate lines;
and what was sent for the deliveries that were refused, so that their redeliveries send the same.

Both are bounded and time-limited: an entry counts within `ttl_s`, and the oldest are forgotten first
when `max_ids` is reached, so memory stays bounded whatever arrives.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

from agents.platforms.common import Delivery

V = TypeVar("V")


class _Expiring(Generic[V]):
    """Entries by key that count for `ttl_s` after they were put, `max_entries` at most (the oldest are
    forgotten first): the memory both of the classes below keep."""

    def __init__(self, ttl_s: float, max_entries: int, clock: Callable[[], float]) -> None:
        if ttl_s <= 0 or max_entries <= 0:
            raise ValueError("ttl_s and max_ids must be positive")
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, V]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: str) -> bool:
        self._expire()
        return key in self._entries

    def put(self, key: str, value: V) -> None:
        """Remembers `value` under `key` from now on (as the newest, whether or not it was there)."""
        now = self._expire()
        self._entries.pop(key, None)
        self._entries[key] = (now, value)
        if len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def pop(self, key: str) -> V | None:
        self._expire()
        entry = self._entries.pop(key, None)
        return None if entry is None else entry[1]

    def _expire(self) -> float:
        now = self._clock()
        horizon = now - self.ttl_s
        while self._entries:
            oldest_at = next(iter(self._entries.values()))[0]
            if oldest_at > horizon:
                break
            self._entries.popitem(last=False)
        return now


class RecentIds:
    def __init__(self, ttl_s: float, max_ids: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._seen: _Expiring[None] = _Expiring(ttl_s, max_ids, clock)

    def __len__(self) -> int:
        return len(self._seen)

    def seen(self, key: str) -> bool:
        """True if `key` was seen within the window (a duplicate); otherwise remembers it and returns False."""
        if key in self._seen:
            return True
        self._seen.put(key, None)
        return False

    def forget(self, key: str) -> None:
        """Un-remember `key`, e.g. when sending it failed and the platform will deliver it again."""
        self._seen.pop(key)


class UnsettledDeliveries:
    """Deliveries answered 503 whose events may reach Kafka all the same, as they were first mapped.

    A 503 says "not acknowledged", not "not written": the producer keeps retrying a send the receiver
    stopped waiting for (the idempotent producer never gives a batch up) and writes it once a broker
    can take it. The platform then delivers the callback again. Mapped anew, an event the platform
    gives no time of its own (a VK like, a follow: stamped when received) would get a second event time,
    so a second row in `events` and, in another minute, a second count. Sending the first mapping again
    gives both copies the same id and time, which the stream processors and the tables count once."""

    def __init__(self, ttl_s: float, max_ids: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._held: _Expiring[Delivery] = _Expiring(ttl_s, max_ids, clock)

    def __len__(self) -> int:
        return len(self._held)

    def hold(self, delivery: Delivery) -> None:
        self._held.put(delivery.delivery_id, delivery)

    def settle(self, delivery: Delivery) -> Delivery:
        """What to send for `delivery`: the events sent when it was refused, if it was (no longer held
        then), or its own."""
        held = self._held.pop(delivery.delivery_id)
        return delivery if held is None else held
