"""The webhook receiver on a real port, sending to the real broker."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import Callable
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from agents import PublisherSettings
from agents.async_sender import AsyncEventSender
from agents.webhook_server import Receiver, build_app
from agents.webhook_settings import MetaSettings, TelegramSettings, VkSettings, WebhookSettings
from pulse.local.local_kafka import free_port
from pulse.topics import ensure_topics
from schemas import EventType, KafkaSettings, Topics, encode_event, validate
from tests import webhook_payloads as p
from tests.events import wire
from tests.kafka_reading import read_all

TOKEN = "generic-token-0123456789"


def settings() -> WebhookSettings:
    return WebhookSettings(
        port=free_port(),
        vk=VkSettings(secret=p.VK_SECRET, confirmations={str(p.VK_GROUP): "conf-123"}),  # type: ignore[arg-type]
        telegram=TelegramSettings(
            secret_token=p.TG_SECRET, channels_by_group={str(p.TG_GROUP): str(p.TG_CHANNEL)}
        ),  # type: ignore[arg-type]
        meta=MetaSettings(app_secret=p.FB_SECRET, verify_token=p.FB_VERIFY),  # type: ignore[arg-type]
        bearer_token=TOKEN,  # type: ignore[arg-type]
        max_body_bytes=64 * 1024,
        ack_timeout_s=3,
    )


class Running:
    def __init__(self, kafka: KafkaSettings, topics: Topics) -> None:
        self.settings = settings()
        factory: Callable[[], AsyncEventSender] = lambda: AsyncEventSender(  # noqa: E731
            kafka, PublisherSettings(connect_timeout_s=2, delivery_timeout_s=5), topics
        )
        self.receiver = Receiver(self.settings, factory)
        self.url = f"http://127.0.0.1:{self.settings.port}"

    async def post(self, path: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, str]:
        async with (
            aiohttp.ClientSession() as session,
            session.post(self.url + path, data=body, headers=headers or {}) as r,
        ):
            return r.status, await r.text()

    async def get(self, path: str) -> tuple[int, str]:
        async with aiohttp.ClientSession() as session, session.get(self.url + path) as r:
            return r.status, await r.text()


@pytest.fixture
def topics(kafka: KafkaSettings, unique: str) -> Topics:
    names = Topics.prefixed(f"w{unique}-")
    ensure_topics(kafka, dict.fromkeys(names.all, 2), 1)
    return names


def run(kafka: KafkaSettings, topics: Topics, scenario: Callable[[Running], Any]) -> None:
    """Runs `scenario` against a receiver on a real port whose publisher talks to `kafka`."""

    async def main() -> None:
        running = Running(kafka, topics)
        runner = web.AppRunner(build_app(running.receiver))
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", running.settings.port).start()
        try:
            await scenario(running)
        finally:
            await runner.cleanup()
            await running.receiver.close()

    asyncio.run(main())


def landed(kafka: KafkaSettings, topics: Topics) -> list[Any]:
    return [(r, e) for r in read_all(kafka, *topics.event_topics) for e in r.events]


def signed(body: bytes, secret: str = p.FB_SECRET) -> dict[str, str]:
    return {"X-Hub-Signature-256": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}


def test_vk(kafka: KafkaSettings, topics: Topics) -> None:
    async def scenario(s: Running) -> None:
        confirm = {"type": "confirmation", "group_id": p.VK_GROUP, "secret": p.VK_SECRET}
        assert await s.post("/webhooks/vk", orjson.dumps(confirm)) == (200, "conf-123")
        assert (await s.post("/webhooks/vk", orjson.dumps({**p.VK_COMMENT, "secret": "nope"})))[0] == 403
        assert (
            await s.post(
                "/webhooks/vk", orjson.dumps({k: v for k, v in p.VK_COMMENT.items() if k != "secret"})
            )
        )[0] == 401
        body = orjson.dumps(p.VK_COMMENT)
        answers = await asyncio.gather(
            *[s.post("/webhooks/vk", body) for _ in range(3)]
        )  # concurrent redeliveries
        assert answers == [(200, "ok")] * 3
        assert await s.post("/webhooks/vk", body) == (200, "ok")
        assert await s.post("/webhooks/vk", orjson.dumps(p.VK_LIKE)) == (200, "ok")
        status, text = await s.post("/webhooks/vk", orjson.dumps(p.vk("wall_reply_new", {"id": 1})))
        assert status == 400 and "is missing" in text

    run(kafka, topics, scenario)
    events = landed(kafka, topics)
    assert sorted((r.topic, e.type, e.post_id) for r, e in events) == [
        (topics.comments, EventType.COMMENT, "4410"), (topics.likes, EventType.LIKE, "4410")
    ]  # fmt: skip
    assert all(r.key == e.post_key.encode() and r.timestamp == e.ts_ms for r, e in events)


def test_telegram(kafka: KafkaSettings, topics: Topics) -> None:
    async def scenario(s: Running) -> None:
        body = orjson.dumps(p.TG_COMMENT)
        assert (await s.post("/webhooks/telegram", body))[0] == 401
        assert (await s.post("/webhooks/telegram", body, {"X-Telegram-Bot-Api-Secret-Token": "wrong"}))[
            0
        ] == 403
        ok = {"X-Telegram-Bot-Api-Secret-Token": p.TG_SECRET}
        assert await s.post("/webhooks/telegram", body, ok) == (200, "ok")
        assert await s.post("/webhooks/telegram", body, ok) == (200, "ok")
        assert await s.post("/webhooks/telegram", orjson.dumps(p.TG_ANSWER), ok) == (200, "ok")

    run(kafka, topics, scenario)
    events = sorted((e for _, e in landed(kafka, topics)), key=lambda e: e.ts_ms)
    assert [(e.comment_id, e.by_community, e.post_id) for e in events] == [
        ("311", False, "1201"),
        ("312", True, "1201"),
    ]


def test_facebook_and_instagram(kafka: KafkaSettings, topics: Topics) -> None:
    async def scenario(s: Running) -> None:
        handshake = f"/webhooks/facebook?hub.mode=subscribe&hub.verify_token={p.FB_VERIFY}&hub.challenge=c-42"
        assert await s.get(handshake) == (200, "c-42")
        assert (await s.get(handshake.replace(p.FB_VERIFY, "bad")))[0] == 403
        body = orjson.dumps(p.FB_BATCH)
        assert (await s.post("/webhooks/facebook", body))[0] == 401
        assert (await s.post("/webhooks/facebook", body, signed(body, "other-secret")))[0] == 403
        assert (await s.post("/webhooks/facebook", body + b" ", signed(body)))[0] == 403, (
            "signature covers the raw bytes"
        )
        assert await s.post("/webhooks/facebook", body, signed(body)) == (200, "ok")
        assert await s.post("/webhooks/facebook", body, signed(body)) == (200, "ok")  # redelivered batch
        ig = orjson.dumps(p.IG_COMMENT)
        assert await s.post("/webhooks/instagram", ig, signed(ig)) == (200, "ok")

    run(kafka, topics, scenario)
    kinds = sorted((e.platform, e.type.value) for _, e in landed(kafka, topics))
    assert kinds == [("facebook", "comment"), ("facebook", "comment"), ("facebook", "like"), ("facebook", "repost"),
                     ("instagram", "comment")]  # fmt: skip


def test_generic_ndjson_all_or_nothing(kafka: KafkaSettings, topics: Topics) -> None:
    good = [validate(wire("like", event_id=f"g{i}")) for i in range(3)]
    body = b"".join(encode_event(e) + b"\n" for e in good)

    async def scenario(s: Running) -> None:
        assert (await s.post("/events", body))[0] == 401
        assert (await s.post("/events", body, {"Authorization": "Bearer wrong"}))[0] == 403
        auth = {"Authorization": f"Bearer {TOKEN}"}
        status, text = await s.post("/events", body + b'{"event_id": "bad"}\n', auth)
        assert status == 400 and "line 4: field 'type'" in text
        assert await s.post("/events", body, auth) == (200, '{"received": 3}')
        assert (await s.post("/events", b"x" * (65 * 1024), auth))[0] == 413

    run(kafka, topics, scenario)
    assert sorted(e.event_id for _, e in landed(kafka, topics)) == ["g0", "g1", "g2"]


def test_broker_down_answers_503_then_the_retry_goes_through(kafka: KafkaSettings, topics: Topics) -> None:
    dead = KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}")
    body = orjson.dumps(p.VK_COMMENT)

    async def scenario(s: Running) -> None:
        assert (await s.get("/readyz"))[0] == 503
        assert (await s.post("/webhooks/vk", body))[0] == 503
        assert (await s.get("/healthz"))[0] == 200
        # The platform retries once Kafka is back: the first failure must not have marked it as seen.
        s.receiver.sender_factory = lambda: AsyncEventSender(kafka, PublisherSettings(), topics)
        assert await s.post("/webhooks/vk", body) == (200, "ok")
        assert (await s.get("/readyz"))[0] == 200

    run(dead, topics, scenario)
    assert [e.comment_id for _, e in landed(kafka, topics)] == ["9051"]


def test_an_event_stamped_a_day_ahead_is_dead_lettered_not_sent(kafka: KafkaSettings, topics: Topics) -> None:
    import time

    from schemas import DLQ_CODE, DLQ_REASON, DLQ_SOURCE, DLQ_STAGE

    tomorrow_s = time.time() + 86_400
    vk_ahead = orjson.dumps(p.vk("wall_reply_new", {**p.VK_COMMENT["object"], "id": 9099, "date": int(tomorrow_s)},
                                 event_id="ahead1"))  # fmt: skip
    now_ms = time.time_ns() // 1_000_000
    lines = [validate(wire("like", event_id="now", ts=now_ms)),
             validate(wire("like", event_id="tomorrow", ts=int(tomorrow_s * 1000)))]  # fmt: skip
    body = b"".join(encode_event(e) + b"\n" for e in lines)

    async def scenario(s: Running) -> None:
        assert await s.post("/webhooks/vk", vk_ahead) == (200, "ok"), "handled: a retry would be no earlier"
        status, text = await s.post("/events", body, {"Authorization": f"Bearer {TOKEN}"})
        answer = orjson.loads(text)
        assert status == 200 and answer["received"] == 1
        (reason,) = answer["dead_lettered"]
        assert reason.startswith("field 'ts': ") and "ahead of the wall clock" in reason
        stats = orjson.loads((await s.get("/stats"))[1])
        assert (stats["vk.ahead_of_clock"], stats["events.ahead_of_clock"], stats["events.accepted"]) == (
            1,
            1,
            1,
        )

    run(kafka, topics, scenario)
    assert [e.event_id for _, e in landed(kafka, topics)] == ["now"]
    dead = sorted(read_all(kafka, topics.dead_letters), key=lambda r: r.headers[DLQ_SOURCE])
    assert [(r.headers[DLQ_SOURCE], r.headers[DLQ_STAGE], r.headers[DLQ_CODE]) for r in dead] == [
        (b"webhook:events", b"ingest-webhook", b"ts_ahead_of_clock"),
        (b"webhook:vk", b"ingest-webhook", b"ts_ahead_of_clock"),
    ]
    assert all(r.headers[DLQ_REASON].startswith(b"field 'ts': ") for r in dead)
    assert validate(orjson.loads(dead[1].value)).comment_id == "9099", "the mapped event, canonical"


def test_members_joining_and_leaving_land_on_the_followers_topic(
    kafka: KafkaSettings, topics: Topics
) -> None:
    async def scenario(s: Running) -> None:
        for body in (p.VK_JOIN, p.VK_LEAVE, p.VK_JOIN):  # the join again: a redelivery
            assert await s.post("/webhooks/vk", orjson.dumps(body)) == (200, "ok")
        request = p.vk("group_join", {"user_id": 99, "join_type": "request"}, event_id="req1")
        assert await s.post("/webhooks/vk", orjson.dumps(request)) == (200, "ok")  # not a member yet
        ok = {"X-Telegram-Bot-Api-Secret-Token": p.TG_SECRET}
        for body in (p.TG_SUBSCRIBED, p.TG_UNSUBSCRIBED):
            assert await s.post("/webhooks/telegram", orjson.dumps(body), ok) == (200, "ok")
        counters = orjson.loads((await s.get("/stats"))[1])
        assert (counters["vk.accepted"], counters["vk.duplicates"], counters["vk.ignored"]) == (2, 1, 1)

    run(kafka, topics, scenario)
    events = landed(kafka, topics)
    assert sorted((r.topic, e.platform, e.type, e.post_id, e.user_id) for r, e in events) == [
        (topics.followers, "telegram", EventType.FOLLOW, "-", "6161"),
        (topics.followers, "telegram", EventType.UNFOLLOW, "-", "6161"),
        (topics.followers, "vk", EventType.FOLLOW, "-", "734001"),
        (topics.followers, "vk", EventType.UNFOLLOW, "-", "734001"),
    ]
    assert all(r.key == e.post_key.encode() for r, e in events)
