"""The webhook receiver: platform callbacks in, canonical events into Kafka, answered only once Kafka has them.

Per request, in this order: size limit (413), authentication on the raw bytes or headers (401 missing,
403 wrong), parsing and mapping (400 with the reason; nothing is sent), redelivery check, send and wait
for Kafka's acknowledgement (503 with Retry-After if Kafka cannot be reached or does not acknowledge within
`ack_timeout_s`, so the platform retries; the delivery is then forgotten by the redelivery check so the
retry goes through, and the retry sends the events the refused attempt sent, which Kafka may have written
all the same: `UnsettledDeliveries`), answer. An event stamped further ahead of the wall clock than
`max_clock_skew_s` is not sent: its canonical bytes go to the dead-letter topic with the reason
(acknowledged before the answer), and the delivery counts as handled (a retry would not make it any
earlier). `/healthz` says the process runs; `/readyz` says whether the last attempt to reach Kafka worked.

kafka-python is synchronous, so sends run in a small thread pool; the producer is started lazily, so the
receiver can start, and answer 503, while Kafka is still away.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
import orjson
from aiohttp import web
from pydantic import SecretStr

from agents.async_sender import AsyncEventSender
from agents.errors import AgentError, KafkaUnavailable
from agents.grouped_sends import GroupedSends
from agents.platforms import Delivery, PayloadError, TelegramThreads, map_meta, map_telegram, map_vk
from agents.recent import RecentIds, UnsettledDeliveries
from agents.webhook_settings import MetaSettings, WebhookSettings
from schemas import (
    MAX_CLOCK_SKEW_S,
    CanonicalEvent,
    ClockLimit,
    EventAhead,
    InvalidEvent,
    dead_letter_headers,
    encode_event,
    parse_line,
)

log = logging.getLogger(__name__)

STAGE = "ingest-webhook"
# The seconds a 503 asks a sender to wait. Kafka takes writes again about 10-20 s after it loses a broker
# (a silent broker is fenced after 9 s, then its partitions get new leaders): a retry sooner mostly meets
# the same refusal. Platforms retry on their own schedules whatever it says.
RETRY_AFTER_S = 10
# Deliveries refused (503) whose events are kept for their redelivery: beyond this, during a long outage
# at a high rate, the oldest are mapped anew when they come back (see UnsettledDeliveries).
MAX_UNSETTLED = 100_000
READ_TIMEOUT = web.AppKey("read_timeout_s", float)


class Receiver:
    """Owns the redelivery memory, the Kafka sender and the counters; the aiohttp handlers call it."""

    def __init__(
        self,
        settings: WebhookSettings,
        sender_factory: Callable[[], AsyncEventSender],
        *,
        clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
        max_clock_skew_s: float = MAX_CLOCK_SKEW_S,
    ) -> None:
        self.settings = settings
        self.max_clock_skew_s = max_clock_skew_s
        self.stats: Counter[str] = Counter()
        self.kafka_ready = False
        self.sender_factory = sender_factory
        self._sender: AsyncEventSender | None = None
        self._starting = asyncio.Lock()
        self._clock_ms = clock_ms
        self._recent = RecentIds(settings.dedup_ttl_s, settings.dedup_max_ids)
        self._unsettled = UnsettledDeliveries(
            settings.dedup_ttl_s, min(settings.dedup_max_ids, MAX_UNSETTLED)
        )
        self._threads = TelegramThreads()
        self._sends = GroupedSends(self._send)

    async def close(self) -> None:
        if self._sender is not None:
            sender, self._sender = self._sender, None
            await sender.stop()

    async def deliver(self, platform: str, deliveries: Sequence[Delivery]) -> web.Response:
        """Sends the deliveries not seen before; 200 once Kafka acknowledged, 503 if it could not."""
        published = await self._publish(platform, deliveries)
        return _unavailable() if published is None else web.Response(text="ok")

    async def _publish(self, platform: str, deliveries: Sequence[Delivery]) -> _Published | None:
        """Sends the deliveries not seen before (their events stamped too far ahead to the dead-letter
        topic instead); what was sent, or None if Kafka did not acknowledge it all."""
        fresh = [self._unsettled.settle(d) for d in deliveries if not self._recent.seen(d.delivery_id)]
        self.stats[f"{platform}.duplicates"] += len(deliveries) - len(fresh)
        limit = ClockLimit.of(self._clock_ms(), self.max_clock_skew_s)
        published = _Published()
        for event in (e for d in fresh for e in d.events):
            refused = limit.refusal(event)
            if refused is None:
                published.events.append(event)
            else:
                published.ahead.append((event, refused))
        try:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for wraps the wait in a task of its own,
            # seen as a tenth of the receiver's CPU at 5,000 requests a second.
            async with asyncio.timeout(self.settings.ack_timeout_s):
                if published.ahead:
                    await self._dead_letter(platform, published.ahead)
                if published.events:
                    await self._sends.send(published.events)
        except (AgentError, TimeoutError) as exc:
            for d in fresh:
                self._recent.forget(d.delivery_id)
                self._unsettled.hold(d)
            self.stats[f"{platform}.unavailable"] += 1
            error = str(exc) or f"no acknowledgement within {self.settings.ack_timeout_s:g} s"
            log.warning(
                "Kafka unavailable, answering 503", extra={"platform": platform, "error": error[:200]}
            )
            return None
        self.stats[f"{platform}.accepted"] += len(published.events)
        self.stats[f"{platform}.ahead_of_clock"] += len(published.ahead)
        return published

    async def _dead_letter(self, platform: str, ahead: list[tuple[CanonicalEvent, EventAhead]]) -> None:
        sender = await self._started_sender()
        for event, refused in ahead:
            headers = dead_letter_headers(STAGE, refused.code, refused.reason, f"webhook:{platform}")
            await sender.dead_letter(encode_event(event), headers, key=event.post_key.encode())

    async def _send(self, events: list[CanonicalEvent]) -> None:
        sender = await self._started_sender()
        try:
            if events:
                await sender.send(events)
            else:
                await sender.probe()
            self.kafka_ready = True
        except KafkaUnavailable:
            self.kafka_ready = False
            raise

    async def _started_sender(self) -> AsyncEventSender:
        async with self._starting:
            if self._sender is None:
                sender = self.sender_factory()
                try:
                    await sender.start()
                except AgentError:
                    self.kafka_ready = False
                    raise
                self._sender = sender
            return self._sender

    async def health(self, request: web.Request) -> web.Response:
        return _ok({"status": "alive"})

    async def ready(self, request: web.Request) -> web.Response:
        """Ready once a send reached Kafka (or a probe did): a platform pointed here will be answered 200."""
        if not self.kafka_ready:
            with contextlib.suppress(AgentError, TimeoutError):  # not ready: the answer below says so
                await asyncio.wait_for(self._send([]), self.settings.ack_timeout_s)
        return _ok({"kafka": self.kafka_ready}, 200 if self.kafka_ready else 503)

    async def counters(self, request: web.Request) -> web.Response:
        sends = self._sends
        rounds = {
            "kafka.rounds": sends.rounds,
            "kafka.largest_round": sends.largest_round,
            "kafka.round_ms_mean": round(sends.round_s / sends.rounds * 1000, 2) if sends.rounds else 0,
        }
        return _ok(dict(self.stats) | rounds)

    # --- platforms -------------------------------------------------------------------------------------

    async def vk(self, request: web.Request) -> web.StreamResponse:
        vk = self.settings.vk
        if vk is None:
            return _not_configured("vk")
        body = await _json_body(request)
        secret = body.get("secret") if isinstance(body, dict) else None
        if not isinstance(secret, str) or not _same(secret, vk.secret):
            return self._refuse("vk", 403 if secret else 401, "wrong or missing secret")
        if body.get("type") == "confirmation":
            answer = vk.confirmations.get(str(body.get("group_id")))
            if answer is None:
                return web.json_response(
                    {"error": "no confirmation string configured for this group"}, status=400
                )
            return web.Response(text=answer)
        delivery = self._mapped("vk", lambda: map_vk(body, vk.admin_ids, self._clock_ms()))
        if isinstance(delivery, web.Response):
            return delivery
        if delivery is None:
            self.stats["vk.ignored"] += 1
            return web.Response(text="ok")  # VK disables servers that answer anything else
        return await self.deliver("vk", [delivery])

    async def telegram(self, request: web.Request) -> web.StreamResponse:
        tg = self.settings.telegram
        if tg is None:
            return _not_configured("telegram")
        token = request.headers.get("X-Telegram-Bot-Api-Secret-Token")
        if token is None:
            return self._refuse("telegram", 401, "missing X-Telegram-Bot-Api-Secret-Token")
        if not _same(token, tg.secret_token):
            return self._refuse("telegram", 403, "wrong secret token")
        body = await _json_body(request)
        delivery = self._mapped("telegram", lambda: map_telegram(body, tg.channels_by_group, self._threads))
        if isinstance(delivery, web.Response):
            return delivery
        if delivery is None:
            self.stats["telegram.ignored"] += 1
            return web.Response(text="ok")
        return await self.deliver("telegram", [delivery])

    def meta_handler(self, platform: str) -> Callable[[web.Request], Any]:
        async def handle(request: web.Request) -> web.StreamResponse:
            meta = self.settings.meta
            if meta is None:
                return _not_configured(platform)
            if request.method == "GET":
                return _meta_handshake(request, meta)
            raw = await _read(request)
            header = request.headers.get("X-Hub-Signature-256")
            if header is None:
                return self._refuse(platform, 401, "missing X-Hub-Signature-256")
            expected = (
                "sha256="
                + hmac.new(meta.app_secret.get_secret_value().encode(), raw, hashlib.sha256).hexdigest()
            )
            if not _same(header, SecretStr(expected)):
                return self._refuse(platform, 403, "signature does not match the body")
            body = _parse(raw)
            deliveries = self._mapped(platform, lambda: map_meta(body, platform))
            if isinstance(deliveries, web.Response):
                return deliveries
            return await self.deliver(platform, deliveries)

        return handle

    async def generic(self, request: web.Request) -> web.StreamResponse:
        token = self.settings.bearer_token
        if token is None:
            return _not_configured("events")
        given = request.headers.get("Authorization", "")
        if not given.startswith("Bearer "):
            return self._refuse("events", 401, "missing bearer token")
        if not _same(given.removeprefix("Bearer "), token):
            return self._refuse("events", 403, "wrong bearer token")
        raw = await _read(request)
        events, reasons = [], []
        for line_no, line in enumerate(raw.split(b"\n"), start=1):
            if line.strip():
                try:
                    events.append(parse_line(line, line_no=line_no))
                except InvalidEvent as exc:
                    reasons.append(exc.reason)
        if reasons:
            self.stats["events.rejected"] += 1
            return web.json_response(
                {"error": "invalid events; nothing was accepted", "reasons": reasons}, status=400
            )
        if not events:
            return web.json_response({"error": "no events in the body"}, status=400)
        published = await self._publish("events", [Delivery(f"event:{e.event_id}", (e,)) for e in events])
        if published is None:
            return _unavailable()
        answer: dict[str, Any] = {"received": len(published.events)}
        if published.ahead:
            answer["dead_lettered"] = [refused.reason for _, refused in published.ahead]
        return web.json_response(answer)

    def _mapped(self, platform: str, mapper: Callable[[], Any]) -> Any:
        try:
            return mapper()
        except PayloadError as exc:
            self.stats[f"{platform}.rejected"] += 1
            return web.json_response({"error": exc.reason}, status=400)

    def _refuse(self, platform: str, status: int, reason: str) -> web.Response:
        self.stats[f"{platform}.unauthorized"] += 1
        return web.json_response({"error": reason}, status=status)


def build_app(receiver: Receiver) -> web.Application:
    app = web.Application(
        client_max_size=receiver.settings.max_body_bytes,
        middlewares=[_body_limit(receiver.settings.max_body_bytes)],
    )
    app[READ_TIMEOUT] = receiver.settings.read_timeout_s
    app.router.add_post("/webhooks/vk", receiver.vk)
    app.router.add_post("/webhooks/telegram", receiver.telegram)
    for platform in ("facebook", "instagram"):
        app.router.add_route("*", f"/webhooks/{platform}", receiver.meta_handler(platform))
    app.router.add_post("/events", receiver.generic)
    app.router.add_get("/healthz", receiver.health)
    app.router.add_get("/readyz", receiver.ready)
    app.router.add_get("/stats", receiver.counters)
    return app


async def serve(receiver: Receiver, should_stop: Callable[[], bool]) -> None:
    """Runs the receiver until `should_stop()`; in-flight requests finish before it returns."""
    # No access log: the counters at /stats say what came in, and a line per request costs CPU at 5k/s.
    # aiohttp closes a connection that sends no whole request within its keep-alive timeout, the first
    # request included: a sender trickling its headers holds a connection no longer than a read timeout.
    runner = web.AppRunner(
        build_app(receiver), shutdown_timeout=receiver.settings.ack_timeout_s + 5, access_log=None,
        keepalive_timeout=receiver.settings.read_timeout_s,
    )  # fmt: skip
    await runner.setup()
    site = web.TCPSite(runner, receiver.settings.host, receiver.settings.port)
    await site.start()
    log.info(
        "webhook receiver listening", extra={"host": receiver.settings.host, "port": receiver.settings.port}
    )
    try:
        while not should_stop():
            await asyncio.sleep(0.2)
    finally:
        await runner.cleanup()
        await receiver.close()


def _body_limit(limit: int) -> Any:
    @web.middleware
    async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.content_length is not None and request.content_length > limit:
            return web.json_response({"error": f"body larger than {limit} bytes"}, status=413)
        try:
            response: web.StreamResponse = await handler(request)
            return response
        except web.HTTPRequestEntityTooLarge:
            return web.json_response({"error": f"body larger than {limit} bytes"}, status=413)
        except _BadBody as exc:
            return web.json_response({"error": str(exc)}, status=400)
        except _SlowBody as exc:
            return web.json_response({"error": str(exc)}, status=408)

    return middleware


class _BadBody(Exception):
    pass


class _SlowBody(Exception):
    pass


@dataclass(slots=True)
class _Published:
    events: list[CanonicalEvent] = field(default_factory=list)  # sent
    ahead: list[tuple[CanonicalEvent, EventAhead]] = field(default_factory=list)  # dead-lettered


def _unavailable() -> web.Response:
    return web.json_response(
        {"error": "event store unavailable, retry later"},
        status=503,
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


async def _json_body(request: web.Request) -> Any:
    return _parse(await _read(request))


async def _read(request: web.Request) -> bytes:
    """The body, if it arrives within the read timeout (a sender that stops sending holds nothing long)."""
    timeout_s: float = request.app[READ_TIMEOUT]
    try:
        async with asyncio.timeout(timeout_s):  # no task per request, as wait_for makes on Python 3.11
            return await request.read()
    except TimeoutError:
        raise _SlowBody(f"the body did not arrive within {timeout_s:g} s") from None


def _same(given: str, expected: SecretStr) -> bool:
    """Constant-time comparison of a credential the sender gave (any text: non-ASCII included, which
    `hmac.compare_digest` refuses in a str) with ours."""
    return hmac.compare_digest(
        given.encode("utf-8", "surrogatepass"), expected.get_secret_value().encode("utf-8", "surrogatepass")
    )


def _parse(raw: bytes) -> Any:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise _BadBody(f"body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise _BadBody("body must be a JSON object")
    return body


def _meta_handshake(request: web.Request, meta: MetaSettings) -> web.Response:
    query = request.query
    token = query.get("hub.verify_token", "")
    if query.get("hub.mode") == "subscribe" and hmac.compare_digest(
        token.encode(), meta.verify_token.get_secret_value().encode()
    ):
        return web.Response(text=query.get("hub.challenge", ""))
    return web.json_response({"error": "verification failed"}, status=403)


def _not_configured(platform: str) -> web.Response:
    return web.json_response(
        {"error": f"the {platform} endpoint is not configured on this receiver"}, status=404
    )


def _ok(payload: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(body=msgspec.json.encode(payload), status=status, content_type="application/json")
