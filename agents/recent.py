"""Remembering which ids were seen recently, to drop platform redeliveries and duplicate lines.

A bounded, time-limited set: an id is a duplicate if it was seen within `ttl_s`; the oldest ids are
forgotten first when `max_ids` is reached, so memory stays bounded whatever arrives.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable


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
