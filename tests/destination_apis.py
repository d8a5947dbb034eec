"""Stand-ins for the notifier's destinations on a real local HTTP port, shaped like the real APIs:

- a Slack incoming webhook, `POST /slack/...`: 200 `ok`; 429 with a `Retry-After` header; 500 `internal_error`;
- the Telegram Bot API, `POST /bot<token>/sendMessage`: `{"ok": true, "result": ...}`; 401 for a wrong
  token; 429 with `{"ok": false, "error_code": 429, "parameters": {"retry_after": N}}`;
- a generic webhook, `POST /hook`: checks the HMAC signature (401 when wrong), 200.

The server runs on its own event loop in a thread, so tests (and a notifier in a subprocess) talk to it
over real sockets. A message counts as delivered when the server answered it with success: that is what
the API's sender can know. `hold_at` keeps the n-th request of an API unanswered (a notifier killed while
waiting for it never learns its fate, and the server never confirms it).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

APIS = ("slack", "telegram", "webhook")


@dataclass(frozen=True)
class Received:
    at: float  # time.monotonic() when the request arrived
    body: dict[str, Any]
    headers: dict[str, str]


@dataclass
class _Api:
    answers: deque[tuple[int, float | None]] = field(default_factory=deque)  # scripted (status, retry after)
    down_status: int | None = None
    hold_at: int | None = None
    holding: threading.Event = field(default_factory=threading.Event)
    requests: int = 0
    attempts: list[float] = field(default_factory=list)
    delivered: list[Received] = field(default_factory=list)


class DestinationApis:
    def __init__(self, bot_token: str, webhook_secret: bytes) -> None:
        self.bot_token = bot_token
        self.webhook_secret = webhook_secret
        self._apis = {name: _Api() for name in APIS}
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._serve, name="destination-apis", daemon=True)
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> DestinationApis:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the stand-in APIs did not start")
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._release.set()
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(10)

    # --- what tests tell the APIs ------------------------------------------------------------------------

    def script(self, api: str, *answers: tuple[int, float | None]) -> None:
        """The next requests get these answers (status, retry-after seconds), then success again."""
        with self._lock:
            self._apis[api].answers.extend(answers)

    def down(self, api: str, status: int | None) -> None:
        """Every request answered with `status` until `down(api, None)`."""
        with self._lock:
            self._apis[api].down_status = status

    def hold_at(self, api: str, n: int) -> threading.Event:
        """The n-th request (1-based) is left unanswered until `release()`; the event is set when it arrives."""
        with self._lock:
            self._apis[api].hold_at = n
            return self._apis[api].holding

    def release(self) -> None:
        self._release.set()

    # --- what tests read -------------------------------------------------------------------------------

    def delivered(self, api: str) -> list[Received]:
        with self._lock:
            return list(self._apis[api].delivered)

    def attempts(self, api: str) -> list[float]:
        with self._lock:
            return list(self._apis[api].attempts)

    # --- the server ------------------------------------------------------------------------------------

    def _serve(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = stopping = asyncio.Event()
        app = web.Application()
        app.router.add_post("/slack/{path:.*}", self._slack)
        app.router.add_post("/bot{token}/sendMessage", self._telegram)
        app.router.add_post("/hook", self._webhook)
        runner = web.AppRunner(app, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.port = runner.addresses[0][1]
        self._ready.set()
        try:
            await stopping.wait()
        finally:
            await runner.cleanup()

    async def _arrive(self, api: str) -> tuple[bool, tuple[int, float | None] | None]:
        """Counts the request; returns (held, forced answer or None for success)."""
        with self._lock:
            state = self._apis[api]
            state.requests += 1
            state.attempts.append(time.monotonic())
            held = state.hold_at == state.requests
            if held:
                state.holding.set()
            answer = state.answers.popleft() if state.answers else None
            if answer is None and state.down_status is not None:
                answer = (state.down_status, None)
        if held:
            while not self._release.is_set():
                await asyncio.sleep(0.05)
        return held, answer

    def _record(self, api: str, body: dict[str, Any], request: web.Request) -> None:
        with self._lock:
            self._apis[api].delivered.append(Received(time.monotonic(), body, dict(request.headers)))

    async def _slack(self, request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        held, answer = await self._arrive("slack")
        if held:
            return web.Response(status=503, text="held")
        if answer is not None:
            status, retry_after = answer
            headers = {"Retry-After": str(int(retry_after))} if retry_after is not None else {}
            text = "rate_limited" if status == 429 else "internal_error"
            return web.Response(status=status, text=text, headers=headers)
        if not isinstance(body.get("text"), str) or not body["text"]:
            return web.Response(status=400, text="no_text")
        self._record("slack", body, request)
        return web.Response(text="ok")

    async def _telegram(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.bot_token:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        body = orjson.loads(await request.read())
        held, answer = await self._arrive("telegram")
        if held:
            return web.json_response({"ok": False, "error_code": 503, "description": "held"}, status=503)
        if answer is not None:
            status, retry_after = answer
            error: dict[str, Any] = {"ok": False, "error_code": status, "description": f"Error {status}"}
            if retry_after is not None:
                error["description"] = f"Too Many Requests: retry after {int(retry_after)}"
                error["parameters"] = {"retry_after": int(retry_after)}
            return web.json_response(error, status=status)
        if not body.get("chat_id") or body.get("parse_mode") != "HTML":
            return web.json_response(
                {"ok": False, "error_code": 400, "description": "Bad Request"}, status=400
            )
        self._record("telegram", body, request)
        return web.json_response({"ok": True, "result": {"message_id": len(self.delivered("telegram"))}})

    async def _webhook(self, request: web.Request) -> web.Response:
        raw = await request.read()
        expected = "sha256=" + hmac.new(self.webhook_secret, raw, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(request.headers.get("X-Pulse-Signature", ""), expected):
            return web.Response(status=401, text="bad signature")
        held, answer = await self._arrive("webhook")
        if held:
            return web.Response(status=503, text="held")
        if answer is not None:
            status, retry_after = answer
            headers = {"Retry-After": str(int(retry_after))} if retry_after is not None else {}
            return web.Response(status=status, text="unavailable", headers=headers)
        self._record("webhook", orjson.loads(raw), request)
        return web.Response(text="ok")
