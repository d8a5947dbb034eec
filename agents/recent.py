"""Remembering recent deliveries: which ids were seen, to drop platform redeliveries and duplicate lines;
and what was sent for the deliveries that were refused, so that their redeliveries send the same.

Both are bounded and time-limited: an entry counts within `ttl_s`, and the oldest are forgotten first
when `max_ids` is reached, so memory stays bounded whatever arrives.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from agents.platforms.common import Delivery


class RecentIds:
    def __init__(self, ttl_s: float, max_ids: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        if ttl_s <= 0 or max_ids <= 0:
            raise ValueError("ttl_s and max_ids must be positive")
        self.ttl_s = ttl_s
        self.max_ids = max_ids
        self._clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def seen(self, key: str) -> bool:
        """True if `key` was seen within the window (a duplicate); otherwise remembers it and returns False."""
        now = self._clock()
        self._expire(now)
        if key in self._seen:
            return True
        self._seen[key] = now
        if len(self._seen) > self.max_ids:
            self._seen.popitem(last=False)
        return False

    def forget(self, key: str) -> None:
        """Un-remember `key`, e.g. when sending it failed and the platform will deliver it again."""
        self._seen.pop(key, None)

    def _expire(self, now: float) -> None:
        horizon = now - self.ttl_s
        while self._seen:
            oldest_key, oldest_at = next(iter(self._seen.items()))
            if oldest_at > horizon:
                break
            del self._seen[oldest_key]


class UnsettledDeliveries:
    """Deliveries answered 503 whose events may reach Kafka all the same, as they were first mapped.

    A 503 says "not acknowledged", not "not written": the producer keeps retrying a send the receiver
    stopped waiting for (the idempotent producer never gives a batch up) and writes it once a broker
    can take it. The platform then delivers the callback again. Mapped anew, an event the platform
    gives no time of its own (a VK like, a follow: stamped when received) would get a second event time,
    so a second row in `events` and, in another minute, a second count. Sending the first mapping again
    gives both copies the same id and time, which the stream processors and the tables count once."""

    def __init__(self, ttl_s: float, max_ids: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        if ttl_s <= 0 or max_ids <= 0:
            raise ValueError("ttl_s and max_ids must be positive")
        self.ttl_s = ttl_s
        self.max_ids = max_ids
        self._clock = clock
        self._held: OrderedDict[str, tuple[float, Delivery]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._held)

    def hold(self, delivery: Delivery) -> None:
        now = self._clock()
        self._expire(now)
        self._held.pop(delivery.delivery_id, None)
        self._held[delivery.delivery_id] = (now, delivery)
        if len(self._held) > self.max_ids:
            self._held.popitem(last=False)

    def settle(self, delivery: Delivery) -> Delivery:
        """What to send for `delivery`: the events sent when it was refused, if it was (no longer held
        then), or its own."""
        self._expire(self._clock())
        held = self._held.pop(delivery.delivery_id, None)
        return delivery if held is None else held[1]

    def _expire(self, now: float) -> None:
        horizon = now - self.ttl_s
        while self._held:
            oldest_at = next(iter(self._held.values()))[0]
            if oldest_at > horizon:
                break
            self._held.popitem(last=False)
