"""One destination's share of the notifier: what it owes, what waits, and the one task that sends it.

An `Outbox` holds the alerts owed to its destination (`owed`, by alert id, with the records waiting for
each), the storm gate that turns a flood into digests, and the backlog of messages ready to go. Its
worker sends one message at a time: rate limit, send, and on a retryable failure the wait the API asked
for (or backoff), with the message put back at the head of the backlog, where it absorbs whatever piled
up for the same community meanwhile (`delivery_pacing.take_next`). Outboxes share nothing, so a slow or
failing destination delays only itself.

When a message is accepted or refused for good, the outbox hands it to `settle` (the notifier's: ledger,
dead letters, offsets) and waits for it before sending the next, which bounds what a crash can repeat.

Alerts too old to post (`held_back.AgeLimit`) never enter the storm gate or the backlog: `offer` sets them
aside in `too_old`, and the worker does the same with any that aged past the limit while they waited (a
destination down for hours). The notifier takes them from there (`take_too_old`: ledger, offsets) and
adds them to `held_back`, the run the line about them will announce (`release_report`).
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
from pipeline.notify.held_back import AgeLimit, HeldBackReport, HeldBackRun, Message, message_id
from pipeline.notify.messages import Digest, Notice, alerts_of, community_key
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


Settle = Callable[["Outbox", Message, Outcome, str], Awaitable[None]]


class Outbox:
    def __init__(
        self,
        destination: Destination,
        settle: Settle,
        *,
        retry_initial_s: float,
        retry_max_s: float,
        clock: Callable[[], float],
        age_limit: AgeLimit | None = None,
    ) -> None:
        self.destination = destination
        self.name = destination.name
        pacing = destination.pacing
        self.gate: StormGate[str, Alert] = StormGate(pacing.digest_threshold, pacing.digest_window_s)
        self.rate = RateLimit(pacing.rate_per_minute, pacing.rate_burst, clock())
        self.backlog: deque[Message] = deque()
        self.owed: dict[str, Owed] = {}
        self.age_limit = age_limit or AgeLimit(None, lambda: 0)
        self.too_old: list[Alert] = []  # owed, too old to post: for the notifier to settle as held back
        self.held_back = HeldBackRun()
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
        return not self.backlog and not self.sending and not self.gate.held and not self.too_old

    def offer(self, alert: Alert, now: float) -> None:
        """A new owed alert: out now, held for its community's digest, or set aside as too old."""
        if self.age_limit.too_old(alert):
            self.too_old.append(alert)
        elif self.gate.offer(community_key(alert), alert, now):
            self._queue(alert)

    def take_too_old(self) -> list[Alert]:
        """The owed alerts set aside as too old since the last call."""
        taken, self.too_old = self.too_old, []
        return taken

    def release_report(self, now: float | None, quiet_s: float) -> HeldBackReport | None:
        """When the run of held-back alerts is over (quiet for `quiet_s`; any, when `now` is None, at
        shutdown), its line goes first in the backlog: one message, not worth waiting behind others."""
        if not self.held_back.due(now, quiet_s):
            return None
        report = self.held_back.report(self.name, self.age_limit.max_age_s, self.age_limit.now_ms())
        self.backlog.appendleft(report)
        self._wake.set()
        return report

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
            message = self._without_too_old(take_next(self.backlog, self.destination.pacing.digest_threshold))
            if message is None:
                continue
            wait = self.rate.wait_s(self._clock())
            if wait > 0:
                self.backlog.appendleft(message)  # where it absorbs what piles up for its community
                await self._pause(wait)
                continue
            self.sending = True
            try:
                self.rate.take(self._clock())
                await self.destination.send(session, message)
            except DestinationError as exc:
                if not exc.retryable:
                    what = "alert refused, sent to the dead-letter topic"
                    if isinstance(message, HeldBackReport):
                        what = "the line about held-back alerts was refused"
                    log.error(what, extra=_about(message, exc))
                    await self._settle(self, message, "refused", str(exc))
                    continue
                delay = retry_delay_s(failures, self._retry_initial_s, self._retry_max_s, exc.retry_after_s)
                failures += 1
                self.retries += 1
                log.warning(
                    "delivery failed, retrying", extra={**_about(message, exc), "in_s": round(delay, 2)}
                )
                self.backlog.appendleft(message)
                await self._pause(delay)
            else:
                failures = 0
                await self._settle(self, message, "delivered", "")
            finally:
                self.sending = False

    def _without_too_old(self, message: Message) -> Message | None:
        """`message` less the alerts that became too old while they waited (set aside); None if that was
        all of them."""
        if isinstance(message, HeldBackReport):
            return message
        alerts = alerts_of(message)
        fresh, old = self.age_limit.split(alerts)
        if not old:
            return message
        self.too_old.extend(old)
        if not fresh:
            return None
        if len(fresh) == 1:
            return fresh[0]
        return Digest(fresh[0].platform, fresh[0].community_id, tuple(fresh))

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)


def _about(message: Message, exc: DestinationError) -> dict[str, Any]:
    return {"destination": exc.destination, "delivery_id": message_id(message), "error": str(exc)}
