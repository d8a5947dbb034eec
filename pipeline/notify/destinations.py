"""Where alerts go: Slack/Mattermost incoming webhooks, a Telegram chat, a generic JSON webhook, stdout.

A `Destination` owns its route (which alerts it wants, by community, kind and platform), its pacing, and
one operation: `send(session, message)` (an alert, a digest, or the line about held-back alerts), which
returns once the API accepted the message and otherwise raises `DestinationError` saying whether a retry
may succeed and how long the API asked us to wait (Slack's `Retry-After` header, Telegram's
`parameters.retry_after`). Retrying, rate limiting and digests belong to the notifier and
`delivery_pacing`; a destination makes exactly one attempt per call.

How answers are judged:
- 2xx (Telegram: `"ok": true`) is delivered;
- 429, 408, 425 and 5xx, timeouts and connection errors are retryable. A timeout is ambiguous: the
  message may have been posted, so a retry can duplicate it (the generic webhook carries the stable
  `Idempotency-Key` for receivers that deduplicate; chat APIs offer no such key);
- any other 4xx means this message will never be accepted here (bad payload, revoked webhook, wrong chat
  id): not retryable. The notifier dead-letters the alert and moves on.

Secrets (webhook URLs, which embed Slack's token, and the bot token) never appear in errors or logs:
messages are scrubbed of them, and `describe()` shows only the host.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import IO, Any
from urllib.parse import urlsplit

import aiohttp
import orjson

from pipeline.errors import DestinationError
from pipeline.notify.held_back import HeldBackReport, Message, message_id, render_report, report_payload
from pipeline.notify.messages import (
    MARKDOWN,
    PLAIN,
    SLACK,
    TELEGRAM_HTML,
    Markup,
    alerts_of,
    render,
    webhook_payload,
)
from pipeline.notify.settings import (
    DestinationConfig,
    NotifySettings,
    Pacing,
    SlackDestination,
    StdoutDestination,
    TelegramDestination,
    WebhookDestination,
)
from schemas.outputs import Alert, AlertKind

SIGNATURE_HEADER = "X-Pulse-Signature"  # "sha256=<hex HMAC-SHA256 of the raw body with the secret>"
ALERT_ID_HEADER = "X-Pulse-Alert-Id"
IDEMPOTENCY_HEADER = "Idempotency-Key"
_RETRYABLE_4XX = frozenset({408, 425, 429})
_ERROR_TEXT_CHARS = 200


class Route:
    """Which alerts a destination wants. Empty lists mean all; communities match `<platform>:<id>` or
    `<id>`."""

    def __init__(
        self, communities: Iterable[str] = (), kinds: Iterable[AlertKind] = (), platforms: Iterable[str] = ()
    ) -> None:
        self.communities = frozenset(communities)
        self.kinds = frozenset(kinds)
        self.platforms = frozenset(platforms)

    def matches(self, alert: Alert) -> bool:
        if self.kinds and alert.kind not in self.kinds:
            return False
        if self.platforms and alert.platform not in self.platforms:
            return False
        return not self.communities or bool(
            {alert.community_id, f"{alert.platform}:{alert.community_id}"} & self.communities
        )


class Destination(ABC):
    kind: str

    def __init__(self, name: str, route: Route, pacing: Pacing, secrets: Iterable[str] = ()) -> None:
        self.name = name
        self.route = route
        self.pacing = pacing
        self._secrets = tuple(s for s in secrets if s)

    @abstractmethod
    async def send(self, session: aiohttp.ClientSession, message: Message) -> None:
        """Posts `message` once; raises `DestinationError` if it was not accepted."""

    @abstractmethod
    def describe(self) -> str:
        """For people and logs: kind, name and host, never a secret."""

    def failure(self, message: str, *, retryable: bool, **details: Any) -> DestinationError:
        for secret in self._secrets:
            message = message.replace(secret, "***")
        return DestinationError(self.name, message[:_ERROR_TEXT_CHARS], retryable=retryable, **details)

    async def _post(
        self, session: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        try:
            # No redirects: a webhook that moved is a configuration to fix, not a body to send elsewhere.
            async with session.post(url, data=body, headers=headers, allow_redirects=False) as response:
                return response.status, dict(response.headers), await response.read()
        except TimeoutError as exc:
            raise self.failure("timed out (the message may have been posted)", retryable=True) from exc
        except aiohttp.ClientError as exc:
            raise self.failure(f"{type(exc).__name__}: {exc}", retryable=True) from exc


def text_of(message: Message, markup: Markup) -> str:
    if isinstance(message, HeldBackReport):
        return render_report(message, markup)
    return render(message, markup)


def judge_http(destination: Destination, status: int, headers: dict[str, str], body: bytes) -> None:
    """Raises `DestinationError` unless `status` is 2xx."""
    if 200 <= status < 300:
        return
    retryable = status >= 500 or status in _RETRYABLE_4XX
    raise destination.failure(
        f"HTTP {status}: {body.decode(errors='replace').strip()}",
        retryable=retryable,
        status=status,
        retry_after_s=retry_after_s(_header(headers, "Retry-After")) if retryable else None,
    )


def _header(headers: dict[str, str], name: str) -> str | None:
    wanted = name.lower()
    return next((value for key, value in headers.items() if key.lower() == wanted), None)


def retry_after_s(value: str | None, now: datetime | None = None) -> float | None:
    """An HTTP `Retry-After` value (seconds, or an HTTP date) as seconds from `now`."""
    if value is None or not value.strip():
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class SlackWebhook(Destination):
    """Slack and Mattermost incoming webhooks: POST `{"text": ...}` to the webhook URL."""

    def __init__(self, config: SlackDestination, pacing: Pacing) -> None:
        self.url = config.url.get_secret_value()
        super().__init__(config.name, _route(config), pacing, [self.url])
        self.kind = config.kind
        self._markup = SLACK if config.kind == "slack" else MARKDOWN

    def describe(self) -> str:
        return f"{self.kind} {self.name!r} ({urlsplit(self.url).hostname})"

    async def send(self, session: aiohttp.ClientSession, message: Message) -> None:
        payload: dict[str, Any] = {"text": text_of(message, self._markup)}
        if self.kind == "slack":
            payload |= {"unfurl_links": False, "unfurl_media": False}
        status, headers, body = await self._post(
            session, self.url, orjson.dumps(payload), {"Content-Type": "application/json"}
        )
        judge_http(self, status, headers, body)


class TelegramChat(Destination):
    """The Bot API's `sendMessage` to one chat, HTML markup, link previews off."""

    kind = "telegram"

    def __init__(self, config: TelegramDestination, pacing: Pacing) -> None:
        token = config.bot_token.get_secret_value()
        super().__init__(config.name, _route(config), pacing, [token])
        self.chat_id = config.chat_id
        self.thread_id = config.message_thread_id
        self.api_url = config.api_url.rstrip("/")
        self._url = f"{self.api_url}/bot{token}/sendMessage"

    def describe(self) -> str:
        return f"telegram {self.name!r} (chat {self.chat_id} via {urlsplit(self.api_url).hostname})"

    async def send(self, session: aiohttp.ClientSession, message: Message) -> None:
        payload: dict[str, Any] = {
            "chat_id": self.chat_id,
            "text": text_of(message, TELEGRAM_HTML),
            "parse_mode": "HTML",
            "link_preview_options": {"is_disabled": True},
        }
        if self.thread_id is not None:
            payload["message_thread_id"] = self.thread_id
        status, _, body = await self._post(
            session, self._url, orjson.dumps(payload), {"Content-Type": "application/json"}
        )
        judge_telegram(self, status, body)


def judge_telegram(destination: Destination, status: int, body: bytes) -> None:
    """The Bot API answers `{"ok": true, ...}` or `{"ok": false, "error_code": ..., "description": ...,
    "parameters": {"retry_after": s, "migrate_to_chat_id": id}}`; a proxy in front may answer anything."""
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        answer = None
    if not isinstance(answer, dict):
        judge_http(destination, status if status >= 300 else 502, {}, body)
        return
    if answer.get("ok") is True and 200 <= status < 300:
        return
    error_code = answer.get("error_code")
    code: int = error_code if isinstance(error_code, int) else status
    found = answer.get("parameters")
    parameters: dict[str, Any] = found if isinstance(found, dict) else {}
    retry_after = parameters.get("retry_after")
    description = str(answer.get("description", "")) or f"HTTP {status}"
    if "migrate_to_chat_id" in parameters:
        description += f" (the group is now chat {parameters['migrate_to_chat_id']}: update chat_id)"
    retryable = code >= 500 or code in _RETRYABLE_4XX or status >= 500
    raise destination.failure(
        f"Telegram {code}: {description}",
        retryable=retryable,
        status=status,
        retry_after_s=float(retry_after) if isinstance(retry_after, int | float) else None,
    )


class JsonWebhook(Destination):
    """POST the alert document (`alert_messages.webhook_payload`) as JSON. Headers: `Idempotency-Key` and
    `X-Pulse-Alert-Id` (the stable delivery id), and with a secret `X-Pulse-Signature: sha256=<hex>`,
    the HMAC-SHA256 of the exact body bytes, for the receiver to check with a constant-time compare."""

    kind = "webhook"

    def __init__(self, config: WebhookDestination, pacing: Pacing) -> None:
        self.url = config.url.get_secret_value()
        self._secret = config.secret.get_secret_value().encode() if config.secret else None
        self._headers = {name: value.get_secret_value() for name, value in config.headers.items()}
        secrets = [
            self.url,
            *self._headers.values(),
            config.secret.get_secret_value() if config.secret else "",
        ]
        super().__init__(config.name, _route(config), pacing, secrets)

    def describe(self) -> str:
        signed = ", signed" if self._secret else ""
        return f"webhook {self.name!r} ({urlsplit(self.url).hostname}{signed})"

    async def send(self, session: aiohttp.ClientSession, message: Message) -> None:
        now = datetime.now(UTC)
        if isinstance(message, HeldBackReport):
            body = orjson.dumps(report_payload(message, now, render_report(message, PLAIN)))
        else:
            body = orjson.dumps(webhook_payload(message, now))
        key = message_id(message)
        headers = {
            **self._headers,
            "Content-Type": "application/json",
            IDEMPOTENCY_HEADER: key,
            ALERT_ID_HEADER: key,
        }
        if self._secret is not None:
            headers[SIGNATURE_HEADER] = sign(self._secret, body)
        status, response_headers, response_body = await self._post(session, self.url, body, headers)
        judge_http(self, status, response_headers, response_body)


def sign(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


class StdoutChannel(Destination):
    """Plain text on standard output, a blank line between messages: for trying things out and for logs.
    Each message ends with when it was delivered and how long after the alert fired, so an operator can
    see the pipeline's delay."""

    kind = "stdout"

    def __init__(
        self,
        config: StdoutDestination,
        pacing: Pacing,
        stream: IO[str] | None = None,
        clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    ) -> None:
        super().__init__(config.name, _route(config), pacing)
        self._stream = stream
        self._clock_ms = clock_ms

    def describe(self) -> str:
        return f"stdout {self.name!r}"

    async def send(self, session: aiohttp.ClientSession, message: Message) -> None:
        stream = self._stream or sys.stdout
        stream.write(text_of(message, PLAIN) + "\n" + delivered_line(message, self._clock_ms()) + "\n\n")
        stream.flush()
        await asyncio.sleep(0)


def delivered_line(message: Message, now_ms: int) -> str:
    """`delivered 09:44:10.456 UTC, 0.5 s after it fired`; for an alert from further back (a replay, a
    backlog), when it fired instead of a delay."""
    delivered = _clock_text(now_ms)
    if isinstance(message, HeldBackReport):
        return f"delivered {delivered}"
    fired_ms = max(a.fired_at_ms for a in alerts_of(message))
    delay_s = (now_ms - fired_ms) / 1000
    if 0 <= delay_s < 3_600:
        return f"delivered {delivered}, {delay_s:.1f} s after it fired"
    fired = datetime.fromtimestamp(fired_ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"delivered {delivered}; fired {fired}"


def _clock_text(ms: int) -> str:
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return f"{moment:%H:%M:%S}.{ms % 1000:03d} UTC"


def build_destinations(
    configs: Iterable[DestinationConfig], settings: NotifySettings, *, stdout: IO[str] | None = None
) -> list[Destination]:
    built: list[Destination] = []
    for config in configs:
        pacing = config.pacing(settings)
        if isinstance(config, SlackDestination):
            built.append(SlackWebhook(config, pacing))
        elif isinstance(config, TelegramDestination):
            built.append(TelegramChat(config, pacing))
        elif isinstance(config, WebhookDestination):
            built.append(JsonWebhook(config, pacing))
        else:
            built.append(StdoutChannel(config, pacing, stdout))
    return built


def _route(config: DestinationConfig) -> Route:
    return Route(config.communities, config.kinds, config.platforms)
