"""One destination's share of the notifier: what it owes, what waits, and the one task that sends it.

An `Outbox` holds the alerts owed to its destination (`owed`, by alert id, with the records waiting for
each), the storm gate that turns a flood into digests, and the backlog of messages ready to go. Its
worker sends one message at a time: rate limit, send, and on a retryable failure the wait the API asked
for (or backoff), with the message put back at the head of the backlog, where it absorbs whatever piled
up for the same community meanwhile (`delivery_pacing.take_next`). Outboxes share nothing, so a slow or
failing destination delays only itself.

When a message is accepted or refused for good, the outbox hands it to `settle` (the notifier's: ledger,
dead letters, offsets) and waits for it before sending the next, which bounds what a crash can repeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp
from kafka import TopicPartition

from pipeline.errors import DestinationError
from pipeline.notify.destinations import Destination
from pipeline.notify.messages import Digest, Notice, community_key, delivery_id
from pipeline.notify.offset_book import Token
from pipeline.notify.pacing import RateLimit, StormGate, in_messages, retry_delay_s, take_next
from schemas.outputs import Alert

log = logging.getLogger(__name__)

Outcome = Literal["delivered", "refused"]


@dataclass(slots=True)
class Owed:
    """One alert owed to one destination, and the records (offsets) waiting for it."""

    alert: Alert
    tokens: list[Token[TopicPartition]]
    source: str  # topic/partition/offset, for the dead-letter topic


Settle = Callable[["Outbox", Notice, Outcome, str], Awaitable[None]]


class Outbox:
    def __init__(
        self,
        destination: Destination,
        settle: Settle,
        *,
        retry_initial_s: float,
        retry_max_s: float,
        clock: Callable[[], float],
    ) -> None:
        self.destination = destination
        self.name = destination.name
        pacing = destination.pacing
        self.gate: StormGate[str, Alert] = StormGate(pacing.digest_threshold, pacing.digest_window_s)
        self.rate = RateLimit(pacing.rate_per_minute, pacing.rate_burst, clock())
        self.backlog: deque[Notice] = deque()
        self.owed: dict[str, Owed] = {}
        self.sending = False
        self.retries = 0
        self._settle = settle
        self._retry_initial_s = retry_initial_s
        self._retry_max_s = retry_max_s
        self._clock = clock
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()

    @property
    def idle(self) -> bool:
        return not self.backlog and not self.sending and not self.gate.held

    def offer(self, alert: Alert, now: float) -> None:
        """A new owed alert: out now, or held for its community's digest."""
        if self.gate.offer(community_key(alert), alert, now):
            self._queue(alert)

    def release_digests(self, now: float | None) -> None:
        """Digests whose window closed (all of them when `now` is None, at shutdown) join the backlog."""
        for _, held in self.gate.due(now) if now is not None else self.gate.drain():
            for chunk in in_messages(held):
                first = chunk[0]
                self._queue(
                    first if len(chunk) == 1 else Digest(first.platform, first.community_id, tuple(chunk))
                )

    def stop(self) -> None:
        """The worker returns after the message in hand; waits (rate limit, retry) end at once."""
        self._stop.set()
        self._wake.set()

    def _queue(self, notice: Notice) -> None:
        self.backlog.append(notice)
        self._wake.set()

    async def run(self, session: aiohttp.ClientSession) -> None:
        failures = 0
        while not self._stop.is_set():
            if not self.backlog:
                self._wake.clear()
                await self._wake.wait()
                continue
            wait = self.rate.wait_s(self._clock())
            if wait > 0:
                await self._pause(wait)
                continue
            notice = take_next(self.backlog, self.destination.pacing.digest_threshold)
            self.sending = True
            try:
                self.rate.take(self._clock())
                await self.destination.send(session, notice)
            except DestinationError as exc:
                if not exc.retryable:
                    log.error("alert refused, sent to the dead-letter topic", extra=_about(notice, exc))
                    await self._settle(self, notice, "refused", str(exc))
                    continue
                delay = retry_delay_s(failures, self._retry_initial_s, self._retry_max_s, exc.retry_after_s)
                failures += 1
                self.retries += 1
                log.warning(
                    "delivery failed, retrying", extra={**_about(notice, exc), "in_s": round(delay, 2)}
                )
                self.backlog.appendleft(notice)
                await self._pause(delay)
            else:
                failures = 0
                await self._settle(self, notice, "delivered", "")
            finally:
                self.sending = False

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)


def _about(notice: Notice, exc: DestinationError) -> dict[str, Any]:
    return {"destination": exc.destination, "delivery_id": delivery_id(notice), "error": str(exc)}
