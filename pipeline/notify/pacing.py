"""How fast and in what shape alerts reach one destination: rate limit, retry delays, storm digests.

Plain logic over an injected clock (no I/O, no asyncio), so each rule can be checked with a fake clock.

- `RateLimit`: a token bucket per destination (`rate_per_minute`, bursts up to `rate_burst`), below the
  APIs' own limits (Slack: about one message a second per webhook; Telegram: 20 a minute per group).
- `retry_delay_s`: the wait the API asked for (Slack's `Retry-After`, Telegram's `retry_after`) when it
  gave one, otherwise exponential backoff from `retry_initial_s` to `retry_max_s`.
- `StormGate`: when more than `threshold` alerts for one community arrive within `window_s`, the next ones
  are held and released as one digest when the window closes; a storm that lasts gives one digest per
  window. The first `threshold` alerts of a storm go out as they come: nobody waits for a digest to learn
  that something is happening.
- `take_next`: the same rule applied to a backlog (a destination coming back after an outage, or slower
  than the storm): more than `threshold` queued alerts for one community leave as one digest. The line
  about held-back alerts (`held_back.HeldBackReport`) is about no community and always leaves alone.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from typing import Generic, TypeVar

from pipeline.notify.held_back import HeldBackReport, Message
from pipeline.notify.messages import Digest, Notice, alerts_of

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")

RETRY_AFTER_CAP_S = 3_600.0  # an API asking for longer is more likely wrong than serious
DIGEST_MAX_ALERTS = 1_000  # one message (and one webhook body) stays a sane size


class RateLimit:
    """A token bucket: `burst` messages at once, then `per_minute` a minute. Starts full."""

    def __init__(self, per_minute: float, burst: int, now: float) -> None:
        if per_minute <= 0 or burst < 1:
            raise ValueError("per_minute must be positive and burst at least 1")
        self.per_s = per_minute / 60
        self.burst = float(burst)
        self._tokens = float(burst)
        self._at = now

    def wait_s(self, now: float) -> float:
        """How long until a message may be sent; 0 when it may go now."""
        self._refill(now)
        return 0.0 if self._tokens >= 1 else (1 - self._tokens) / self.per_s

    def take(self, now: float) -> None:
        """Spends one message; call when `wait_s` said 0 (an API's 429 is the backstop, not this)."""
        self._refill(now)
        self._tokens -= 1

    def _refill(self, now: float) -> None:
        if now > self._at:
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.per_s)
            self._at = now


def retry_delay_s(attempt: int, initial_s: float, max_s: float, retry_after_s: float | None) -> float:
    """`attempt` counts failures so far, from 0."""
    if retry_after_s is not None:
        return min(max(retry_after_s, 0.0), RETRY_AFTER_CAP_S)
    return min(initial_s * float(2 ** min(attempt, 30)), max_s)


class StormGate(Generic[K, T]):
    """Per key (a community), counts arrivals in a sliding window and holds what exceeds the threshold."""

    def __init__(self, threshold: int, window_s: float) -> None:
        if threshold < 1 or window_s <= 0:
            raise ValueError("threshold must be at least 1 and window_s positive")
        self.threshold = threshold
        self.window_s = window_s
        self._arrivals: dict[K, deque[float]] = {}
        self._held: dict[K, tuple[float, list[T]]] = {}  # key -> (digest opened at, items)

    def offer(self, key: K, item: T, now: float) -> bool:
        """True: send `item` now. False: it is held for the key's digest (see `due`)."""
        arrivals = self._arrivals.setdefault(key, deque())
        while arrivals and arrivals[0] <= now - self.window_s:
            arrivals.popleft()
        arrivals.append(now)
        held = self._held.get(key)
        if held is not None:
            held[1].append(item)
            return False
        if len(arrivals) > self.threshold:
            self._held[key] = (now, [item])
            return False
        return True

    def due(self, now: float) -> list[tuple[K, list[T]]]:
        """The digests whose window has closed, oldest first; their keys start counting afresh."""
        ready = [key for key, (opened, _) in self._held.items() if opened + self.window_s <= now]
        released = [(key, self._held.pop(key)[1]) for key in ready]
        for key in [k for k, a in self._arrivals.items() if not a or a[-1] <= now - self.window_s]:
            if key not in self._held:
                del self._arrivals[key]
        return released

    def drain(self) -> list[tuple[K, list[T]]]:
        """Every held digest now, e.g. at shutdown."""
        released = [(key, items) for key, (_, items) in self._held.items()]
        self._held.clear()
        return released

    @property
    def held(self) -> int:
        return sum(len(items) for _, items in self._held.values())

    def next_due_s(self, now: float) -> float | None:
        """Seconds until the next digest closes, or None when nothing is held."""
        if not self._held:
            return None
        return max(0.0, min(opened for opened, _ in self._held.values()) + self.window_s - now)


def _key(notice: Notice) -> tuple[str, str]:
    alert = alerts_of(notice)[0]
    return alert.platform, alert.community_id


def take_next(backlog: deque[Message], threshold: int) -> Message:
    """Pops the next message to send. If the backlog holds more than `threshold` alerts for the head's
    community (or the head is a digest already), they leave together as one digest, in arrival order."""
    head = backlog.popleft()
    if isinstance(head, HeldBackReport):
        return head
    key = _key(head)
    same = [n for n in backlog if not isinstance(n, HeldBackReport) and _key(n) == key]
    if not same:
        return head
    alerts = list(alerts_of(head))
    if not isinstance(head, Digest) and len(alerts) + sum(len(alerts_of(n)) for n in same) <= threshold:
        return head
    taken: list[Notice] = []
    for notice in same:
        if len(alerts) + len(alerts_of(notice)) > DIGEST_MAX_ALERTS:
            break
        alerts.extend(alerts_of(notice))
        taken.append(notice)
    gone = {id(n) for n in taken}
    remaining = [n for n in backlog if id(n) not in gone]
    backlog.clear()
    backlog.extend(remaining)
    return Digest(key[0], key[1], tuple(alerts))


def in_messages(items: list[T]) -> list[list[T]]:
    """A released storm split into digests of at most `DIGEST_MAX_ALERTS` alerts."""
    return [items[i : i + DIGEST_MAX_ALERTS] for i in range(0, len(items), DIGEST_MAX_ALERTS)]
