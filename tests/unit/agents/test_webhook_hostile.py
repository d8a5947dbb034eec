"""The webhook receiver answers anything with a 2xx or a 4xx, never a 500: arbitrary bytes, JSON and headers
into every endpoint, signed and authenticated where that is what it takes to reach the mappers. Kafka's
side is a fake that acknowledges at once (the integration tests use the real broker)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import http.client
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from typing import Any

import orjson
import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.webhook_server import Receiver, build_app
from agents.webhook_settings import MetaSettings, TelegramSettings, VkSettings, WebhookSettings
from pulse.local.local_kafka import free_port
from schemas import CanonicalEvent
from tests import webhook_payloads as p
from tests.unit.agents.test_hostile_payloads import META, TELEGRAM, VK, disturbed, json_objects, json_values

TOKEN = "generic-token-0123456789"
EXAMPLES = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                            HealthCheck.function_scoped_fixture])  # fmt: skip
ANSWERED = {200, 400, 401, 403, 404, 408, 413}


class AcknowledgingSender:
    """Takes every send and dead letter at once, as Kafka would when all is well."""

    def __init__(self) -> None:
        self.sent: list[CanonicalEvent] = []
        self.dead: list[bytes] = []

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def probe(self) -> None:
        pass

    async def send(self, events: Sequence[CanonicalEvent]) -> None:
        self.sent.extend(events)

    async def dead_letter(self, value: bytes, headers: Any, key: bytes | None = None) -> None:
        self.dead.append(value)


class Served:
    """The receiver on a loopback port, its event loop in a thread of its own."""

    def __init__(self, read_timeout_s: float = 15.0) -> None:
        self.settings = WebhookSettings(
            port=free_port(),
            vk=VkSettings(secret=p.VK_SECRET, confirmations={str(p.VK_GROUP): "conf-123"}),  # type: ignore[arg-type]
            telegram=TelegramSettings(secret_token=p.TG_SECRET, channels_by_group={str(p.TG_GROUP): str(p.TG_CHANNEL)}),  # type: ignore[arg-type]
            meta=MetaSettings(app_secret=p.FB_SECRET, verify_token=p.FB_VERIFY),  # type: ignore[arg-type]
            bearer_token=TOKEN,  # type: ignore[arg-type]
            max_body_bytes=64 * 1024,
            read_timeout_s=read_timeout_s,
        )  # fmt: skip
        self.sender = AcknowledgingSender()
        self.receiver = Receiver(self.settings, lambda: self.sender)  # type: ignore[arg-type,return-value]
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=asyncio.run, args=(self._main(),), daemon=True)

    async def _main(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        runner = web.AppRunner(build_app(self.receiver), keepalive_timeout=self.settings.read_timeout_s)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.settings.port).start()
        self._ready.set()
        await self._stop.wait()
        await runner.cleanup()

    def __enter__(self) -> Served:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, Any] | None = None
    ) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.settings.port, timeout=10)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            answer = connection.getresponse()
            return answer.status, answer.read()
        finally:
            connection.close()


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    with Served() as running:
        yield running


def signed(body: bytes) -> dict[str, str]:
    return {
        "X-Hub-Signature-256": "sha256=" + hmac.new(p.FB_SECRET.encode(), body, hashlib.sha256).hexdigest()
    }


any_bytes = st.binary(max_size=400)
header_bytes = st.binary(min_size=1, max_size=40).filter(
    lambda b: not set(b) & {0, 10, 13} and b.strip() == b
)


def test_the_samples_are_accepted(served: Served) -> None:
    assert served.request("POST", "/webhooks/vk", orjson.dumps(p.VK_COMMENT))[0] == 200
    assert served.request("POST", "/webhooks/telegram", orjson.dumps(p.TG_COMMENT),
                          {"X-Telegram-Bot-Api-Secret-Token": p.TG_SECRET})[0] == 200  # fmt: skip
    body = orjson.dumps(p.FB_BATCH)
    assert served.request("POST", "/webhooks/facebook", body, signed(body))[0] == 200


@EXAMPLES
@given(json_objects | st.sampled_from(VK).flatmap(disturbed))
def test_vk_any_json_with_the_secret(served: Served, body: dict[str, Any]) -> None:
    status, _ = served.request("POST", "/webhooks/vk", orjson.dumps({**body, "secret": p.VK_SECRET}))
    assert status in {200, 400}


@EXAMPLES
@given(json_values, st.one_of(json_values, st.text()))
def test_vk_any_body_and_any_secret(served: Served, body: Any, secret: Any) -> None:
    if isinstance(body, dict):
        body = {**body, "secret": secret}
    status, _ = served.request("POST", "/webhooks/vk", orjson.dumps(body))
    assert status in ANSWERED


def test_a_non_ascii_vk_secret_is_refused_not_a_crash(served: Served) -> None:
    status, text = served.request(
        "POST", "/webhooks/vk", orjson.dumps({**p.VK_COMMENT, "secret": "ключ-ключ"})
    )
    assert status == 403, text


@EXAMPLES
@given(any_bytes | st.sampled_from(TELEGRAM).flatmap(disturbed).map(orjson.dumps))
def test_telegram_any_body_with_the_token(served: Served, body: bytes) -> None:
    status, _ = served.request(
        "POST", "/webhooks/telegram", body, {"X-Telegram-Bot-Api-Secret-Token": p.TG_SECRET}
    )
    assert status in {200, 400}


@EXAMPLES
@given(header_bytes)
def test_telegram_any_token(served: Served, token: bytes) -> None:
    status, _ = served.request(
        "POST", "/webhooks/telegram", b"{}", {"X-Telegram-Bot-Api-Secret-Token": token}
    )
    assert status in {400, 403}  # 400: aiohttp refuses control characters in a header


@EXAMPLES
@given(
    any_bytes | st.sampled_from(META).flatmap(disturbed).map(orjson.dumps),
    st.sampled_from(["facebook", "instagram"]),
)
def test_meta_any_body_signed(served: Served, body: bytes, platform: str) -> None:
    status, _ = served.request("POST", f"/webhooks/{platform}", body, signed(body))
    assert status in {200, 400}


@EXAMPLES
@given(any_bytes, header_bytes)
def test_meta_any_signature(served: Served, body: bytes, signature: bytes) -> None:
    status, _ = served.request("POST", "/webhooks/facebook", body, {"X-Hub-Signature-256": signature})
    assert status in {400, 403}


@EXAMPLES
@given(
    st.dictionaries(
        st.sampled_from(["hub.mode", "hub.verify_token", "hub.challenge", "x"]), st.text(max_size=20)
    )
)
def test_meta_handshake_any_query(served: Served, query: dict[str, str]) -> None:
    status, _ = served.request("GET", "/webhooks/facebook?" + urllib.parse.urlencode(query))
    assert status in {200, 403}


@EXAMPLES
@given(any_bytes | st.lists(json_values, max_size=4).map(lambda vs: b"\n".join(map(orjson.dumps, vs))))
def test_events_any_body_with_the_token(served: Served, body: bytes) -> None:
    status, _ = served.request("POST", "/events", body, {"Authorization": f"Bearer {TOKEN}"})
    assert status in {200, 400}


@EXAMPLES
@given(header_bytes)
def test_events_any_authorization(served: Served, given_header: bytes) -> None:
    status, _ = served.request("POST", "/events", b"", {"Authorization": b"Bearer " + given_header})
    assert status in {400, 403}


def test_a_body_that_never_arrives_is_answered_408_and_a_silent_connection_closed() -> None:
    with Served(read_timeout_s=0.5) as slow:
        with socket.create_connection(("127.0.0.1", slow.settings.port), timeout=5) as connection:
            connection.sendall(
                b"POST /events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode()
                + b"\r\nContent-Length: 100\r\n\r\n{"
            )  # fmt: skip
            started = time.monotonic()
            answer = connection.recv(4096)
        assert answer.startswith(b"HTTP/1.1 408"), answer
        assert time.monotonic() - started < 3
        with socket.create_connection(("127.0.0.1", slow.settings.port), timeout=5) as connection:
            connection.sendall(b"POST /events HTTP/1.1\r\nHost: x\r\n")  # and then nothing more
            started = time.monotonic()
            assert connection.recv(4096) == b"", "closed"
        assert time.monotonic() - started < 3
