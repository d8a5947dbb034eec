"""What the webhook receiver answers when Kafka does not take the events: 503 with Retry-After, whether
Kafka refuses at once or never acknowledges (then within the ack timeout, never a hang), and a redelivery
of a refused callback sends the events as they were first mapped, event time included (the refused send
may have reached Kafka all the same). Kafka's side is a fake whose answer each test sets."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import orjson
from aiohttp.test_utils import TestClient, TestServer

from agents import KafkaUnavailable
from agents.webhook_server import RETRY_AFTER_S, Receiver, build_app
from agents.webhook_settings import VkSettings, WebhookSettings
from schemas import CanonicalEvent
from tests import webhook_payloads as p

NOW_MS = 1_795_447_000_000


class ScriptedKafka:
    """Acknowledges, refuses (KafkaUnavailable) or never answers, as `answer` says at the time of a send."""

    def __init__(self) -> None:
        self.answer = "ack"
        self.sent: list[CanonicalEvent] = []

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def probe(self) -> None:
        pass

    async def send(self, events: Sequence[CanonicalEvent]) -> None:
        if self.answer == "refuse":
            raise KafkaUnavailable("NotEnoughReplicasError")
        if self.answer == "silence":
            await asyncio.Event().wait()
        self.sent.extend(events)

    async def dead_letter(self, value: bytes, headers: Any, key: bytes | None = None) -> None:
        raise AssertionError("nothing here is ahead of the clock")


class Clock:
    def __init__(self) -> None:
        self.now_ms = NOW_MS

    def __call__(self) -> int:
        return self.now_ms


def receiver(kafka: ScriptedKafka, clock: Clock) -> Receiver:
    settings = WebhookSettings(vk=VkSettings(secret=p.VK_SECRET), ack_timeout_s=0.3)  # type: ignore[arg-type]
    return Receiver(settings, lambda: kafka, clock_ms=clock)  # type: ignore[arg-type,return-value]


async def post(client: TestClient[Any, Any], body: dict[str, Any]) -> tuple[int, str | None, float]:
    started = time.monotonic()
    answer = await client.post("/webhooks/vk", data=orjson.dumps(body))
    await answer.read()
    return answer.status, answer.headers.get("Retry-After"), time.monotonic() - started


def test_kafka_refusing_or_silent_is_a_503_with_retry_after_within_the_ack_timeout() -> None:
    async def scenario() -> None:
        kafka = ScriptedKafka()
        async with TestClient(TestServer(build_app(receiver(kafka, Clock())))) as client:
            kafka.answer = "refuse"
            status, retry_after, _ = await post(client, p.VK_LIKE)
            assert (status, retry_after) == (503, str(RETRY_AFTER_S))
            kafka.answer = "silence"
            status, retry_after, took_s = await post(client, p.VK_REPOST)
            assert (status, retry_after) == (503, str(RETRY_AFTER_S)) and took_s < 2
            kafka.answer = "ack"
            status, retry_after, _ = await post(client, p.VK_LIKE)
            assert (status, retry_after) == (200, None)
        assert [e.event_id for e in kafka.sent] == ["vk:like1"]

    asyncio.run(scenario())


def test_the_redelivery_of_a_refused_like_sends_it_with_its_first_event_time() -> None:
    async def scenario() -> None:
        kafka, clock = ScriptedKafka(), Clock()
        async with TestClient(TestServer(build_app(receiver(kafka, clock)))) as client:
            kafka.answer = "silence"  # the send may still reach Kafka: the producer retries it
            assert (await post(client, p.VK_LIKE))[0] == 503
            clock.now_ms += 90_000  # VK redelivers later, into another minute
            kafka.answer = "ack"
            assert (await post(client, p.VK_LIKE))[0] == 200
            assert (await post(client, p.VK_LIKE))[0] == 200, "a duplicate of an acknowledged delivery"
        assert [(e.event_id, e.ts_ms) for e in kafka.sent] == [("vk:like1", NOW_MS)]

    asyncio.run(scenario())
