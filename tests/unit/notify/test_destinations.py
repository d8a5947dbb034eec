"""Destinations without the network: routing, pacing (rate limit, retry delays, storm digests), how API
answers are judged, the destinations file, and which offsets may be committed."""

from __future__ import annotations

import asyncio
import io
import time
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from pipeline.errors import DestinationError, NotifyConfigError
from pipeline.notify.destinations import (
    Destination,
    Route,
    StdoutChannel,
    TelegramChat,
    build_destinations,
    delivered_line,
    judge_http,
    judge_telegram,
    retry_after_s,
    sign,
)
from pipeline.notify.messages import Digest, Notice, alerts_of, delivery_id
from pipeline.notify.offset_book import OffsetBook
from pipeline.notify.outbox import Outbox
from pipeline.notify.pacing import RateLimit, StormGate, in_messages, retry_delay_s, take_next
from pipeline.notify.settings import (
    NotifySettings,
    Pacing,
    StdoutDestination,
    TelegramDestination,
    load_destinations,
)
from schemas.outputs import Alert, AlertKind


def alert(community: str = "c1", comment: str = "m1", kind: AlertKind = AlertKind.UNANSWERED, platform: str = "vk") -> Alert:  # fmt: skip
    return Alert(
        alert_id=f"{platform}:{community}:{comment}:{kind.value}", kind=kind, platform=platform,
        community_id=community, post_id="p1", comment_id=comment, author_id="u1", snippet="hello?",
        commented_at_ms=1_767_268_800_000, fired_at_ms=1_767_272_400_000, waited_s=3600.0, sla_s=3600.0,
    )  # fmt: skip


# --- routing ----------------------------------------------------------------------------------------------


def test_an_empty_route_takes_everything() -> None:
    assert Route().matches(alert())


def test_routes_filter_by_community_kind_and_platform() -> None:
    route = Route(communities=["vk:c1", "c2"], kinds=[AlertKind.UNANSWERED, AlertKind.RESOLVED])
    assert route.matches(alert("c1"))
    assert route.matches(alert("c2", platform="telegram")), "a bare id matches on every platform"
    assert not route.matches(alert("c1", platform="telegram")), "vk:c1 is VK's c1 only"
    assert not route.matches(alert("c3"))
    assert not route.matches(alert("c1", kind=AlertKind.AT_RISK))
    assert Route(platforms=["telegram"]).matches(alert(platform="telegram"))
    assert not Route(platforms=["telegram"]).matches(alert())


# --- pacing -----------------------------------------------------------------------------------------------


def test_rate_limit_allows_a_burst_then_the_rate() -> None:
    limit = RateLimit(per_minute=30, burst=3, now=0.0)
    for _ in range(3):
        assert limit.wait_s(0.0) == 0
        limit.take(0.0)
    assert limit.wait_s(0.0) == pytest.approx(2.0), "30 a minute: one every 2 s"
    assert limit.wait_s(1.5) == pytest.approx(0.5)
    assert limit.wait_s(2.0) == 0
    limit.take(2.0)
    assert limit.wait_s(600.0) == 0 and limit.wait_s(600.0) == 0
    for _ in range(3):
        limit.take(600.0)
    assert limit.wait_s(600.0) > 0, "a long pause refills the burst, not more"


def test_retry_delays_honour_the_api_then_back_off() -> None:
    assert retry_delay_s(0, 1.0, 60.0, retry_after_s=7.0) == 7.0
    assert retry_delay_s(5, 1.0, 60.0, retry_after_s=120.0) == 120.0, "the API's wait beats retry_max_s"
    assert retry_delay_s(0, 1.0, 60.0, retry_after_s=1e9) == 3600.0, "but not absurd ones"
    assert [retry_delay_s(n, 1.0, 60.0, None) for n in range(8)] == [1, 2, 4, 8, 16, 32, 60, 60]


def test_a_storm_becomes_one_digest_per_window_after_the_first_few() -> None:
    gate: StormGate[str, int] = StormGate(threshold=5, window_s=60)
    sent_now = [i for i in range(500) if gate.offer("vk:c1", i, now=i * 0.01)]
    assert sent_now == [0, 1, 2, 3, 4]
    assert gate.held == 495 and gate.due(now=59.0) == []
    assert gate.next_due_s(now=59.0) == pytest.approx(1.05)
    ((key, digest),) = gate.due(now=60.05)
    assert key == "vk:c1" and digest == list(range(5, 500))
    # The storm goes on: arrivals within the window still count, so the next ones are held again.
    assert gate.offer("vk:c1", 500, now=60.1) is False
    assert gate.due(now=120.2) == [("vk:c1", [500])]


def test_communities_are_counted_apart_and_calm_returns() -> None:
    gate: StormGate[str, str] = StormGate(threshold=2, window_s=10)
    assert gate.offer("a", "a1", 0) and gate.offer("a", "a2", 1)
    assert gate.offer("b", "b1", 1), "another community is not in a storm"
    assert not gate.offer("a", "a3", 2)
    assert gate.due(12) == [("a", ["a3"])]
    assert gate.offer("a", "a4", 30), "the window has passed: single messages again"


def test_drain_releases_every_held_digest() -> None:
    gate: StormGate[str, int] = StormGate(threshold=1, window_s=60)
    for i in range(3):
        gate.offer("k", i, 0.0)
    assert gate.drain() == [("k", [1, 2])] and gate.held == 0


def test_a_backlog_leaves_as_digests_when_one_community_piles_up() -> None:
    backlog: deque[Notice] = deque(
        [alert("c1", "m0"), alert("c2", "x"), *(alert("c1", f"m{i}") for i in range(1, 6)), alert("c3", "y")]
    )
    first = take_next(backlog, threshold=5)
    assert isinstance(first, Digest) and [a.comment_id for a in first.alerts] == [f"m{i}" for i in range(6)]
    assert [alerts_of(n)[0].community_id for n in backlog] == ["c2", "c3"], "the others keep their order"
    calm: deque[Notice] = deque([alert("c1", "m0"), alert("c1", "m1")])
    assert take_next(calm, threshold=5) == alert("c1", "m0"), "few alerts: one at a time"


def test_a_digest_put_back_for_a_retry_absorbs_what_arrived_meanwhile() -> None:
    digest = Digest("vk", "c1", (alert("c1", "m0"), alert("c1", "m1")))
    backlog: deque[Notice] = deque([digest, alert("c1", "m2")])
    merged = take_next(backlog, threshold=50)
    assert isinstance(merged, Digest) and len(merged.alerts) == 3 and not backlog


def test_huge_storms_are_split_into_sane_messages() -> None:
    assert [len(chunk) for chunk in in_messages(list(range(2500)))] == [1000, 1000, 500]


# --- how API answers are judged ---------------------------------------------------------------------------


def telegram(token: str = "123:SECRET-bot-token") -> TelegramChat:
    config = TelegramDestination(name="duty", kind="telegram", bot_token=token, chat_id="-100")  # type: ignore[arg-type]
    return TelegramChat(config, config.pacing(NotifySettings()))


def failure(judge: Any, *args: Any) -> DestinationError:
    with pytest.raises(DestinationError) as caught:
        judge(*args)
    return caught.value


def test_http_answers_are_sorted_into_delivered_retryable_and_refused() -> None:
    destination = telegram()
    judge_http(destination, 200, {}, b"ok")
    limited = failure(judge_http, destination, 429, {"Retry-After": "30"}, b"rate_limited")
    assert limited.retryable and limited.retry_after_s == 30.0 and limited.status == 429
    assert failure(judge_http, destination, 503, {"retry-after": "5"}, b"").retry_after_s == 5.0
    refused = failure(judge_http, destination, 404, {}, b"no_service")
    assert not refused.retryable and "no_service" in str(refused)


def test_retry_after_may_be_an_http_date() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after_s("Thu, 01 Jan 2026 12:00:42 GMT", now) == 42.0
    assert retry_after_s("soon", now) is None and retry_after_s(None) is None


def test_telegram_answers_carry_their_own_retry_after() -> None:
    destination = telegram()
    judge_telegram(destination, 200, b'{"ok": true, "result": {"message_id": 1}}')
    body = b'{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 3","parameters":{"retry_after":3}}'
    limited = failure(judge_telegram, destination, 429, body)
    assert limited.retryable and limited.retry_after_s == 3.0
    wrong_chat = failure(judge_telegram, destination, 400, b'{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}')  # fmt: skip
    assert not wrong_chat.retryable and "chat not found" in str(wrong_chat)
    assert failure(judge_telegram, destination, 502, b"<html>Bad Gateway</html>").retryable


def test_secrets_never_reach_error_messages() -> None:
    destination = telegram("123:TOP-SECRET-bot-token")
    error = failure(judge_http, destination, 500, {}, b"failed for /bot123:TOP-SECRET-bot-token/sendMessage")
    assert "TOP-SECRET" not in str(error) and "***" in str(error)
    assert "TOP-SECRET" not in destination.describe()


def test_the_signature_is_hmac_sha256_of_the_exact_body() -> None:
    # The published HMAC-SHA256 test vector (key "key", the quick brown fox), not a re-computation.
    body = b"The quick brown fox jumps over the lazy dog"
    assert sign(b"key", body) == "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
    assert sign(b"key", body + b" ") != sign(b"key", body)


def test_stdout_prints_plain_text() -> None:
    out = io.StringIO()
    (channel,) = build_destinations(
        [StdoutDestination(name="stdout", kind="stdout")], NotifySettings(), stdout=out
    )
    assert isinstance(channel, StdoutChannel)

    async def send() -> None:
        async with aiohttp.ClientSession() as session:  # unused by stdout; no connection is made
            await channel.send(session, alert())

    asyncio.run(send())
    assert out.getvalue().startswith("🔴 Unanswered for 1h 00m, SLA 1h 00m · VK c1\n")


def test_stdout_says_when_each_alert_was_delivered_and_how_late() -> None:
    fired = alert()
    out = io.StringIO()
    config = StdoutDestination(name="stdout", kind="stdout")
    channel = StdoutChannel(
        config, config.pacing(NotifySettings()), out, clock_ms=lambda: fired.fired_at_ms + 1_234
    )

    async def send() -> None:
        async with aiohttp.ClientSession() as session:
            await channel.send(session, fired)

    asyncio.run(send())
    moment = datetime.fromtimestamp((fired.fired_at_ms + 1_234) / 1000, tz=UTC)
    assert (
        f"\ndelivered {moment:%H:%M:%S}.{(fired.fired_at_ms + 1_234) % 1000:03d} UTC, 1.2 s after it fired\n\n"
        in out.getvalue()
    )
    assert delivered_line(fired, fired.fired_at_ms + 86_400_000).endswith(
        f"; fired {datetime.fromtimestamp(fired.fired_at_ms / 1000, tz=UTC):%Y-%m-%d %H:%M:%S} UTC"
    ), "an alert from a day back says when it fired, not a delay"


# --- the destinations file and environment ----------------------------------------------------------------

EXAMPLE = """
[[destination]]
name = "ops-slack"
kind = "slack"
url = "https://hooks.slack.com/services/T000/B000/XXXX"
kinds = ["unanswered_comment", "resolved"]

[[destination]]
name = "duty"
kind = "telegram"
bot_token = "123456:ABC-bot-token-of-duty"
chat_id = "-1001234567890"
communities = ["vk:12345"]
rate_per_minute = 10

[[destination]]
name = "tooling"
kind = "webhook"
url = "https://tools.example/pulse"
secret = "s3cret-signing-key"
headers = { Authorization = "Bearer t0ken" }
"""


def test_the_file_lists_several_destinations_with_routes_and_limits(tmp_path: Path) -> None:
    path = tmp_path / "notify.toml"
    path.write_text(EXAMPLE)
    settings = NotifySettings(config_file=path, rate_per_minute=20)
    slack, duty, tooling = build_destinations(load_destinations(settings), settings)
    assert (slack.kind, duty.kind, tooling.kind) == ("slack", "telegram", "webhook")
    assert slack.route.kinds == {AlertKind.UNANSWERED, AlertKind.RESOLVED}
    assert duty.route.communities == {"vk:12345"}
    assert (duty.pacing.rate_per_minute, slack.pacing.rate_per_minute) == (10, 20)
    assert "XXXX" not in slack.describe() and "s3cret" not in repr(load_destinations(settings))


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[[destination]]\nname='x'\nkind='pager'\n", "destination.0"),
        ("[[destination]]\nname='x'\nkind='slack'\n", "url"),
        ("[[destination]]\nname='x'\nkind='webhook'\nurl='ftp://files.example/hook'\n", "http"),
        ("[[destination]]\nname='x'\nkind='stdout'\ncolour='red'\n", "colour"),
        ("[[destination]]\nname='x'\nkind='stdout'\n[[destination]]\nname='x'\nkind='stdout'\n", "unique"),
        ("destination = [", "TOML"),
    ],
)
def test_a_bad_file_is_refused_with_the_reason(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "notify.toml"
    path.write_text(text)
    with pytest.raises(NotifyConfigError, match=problem):
        load_destinations(NotifySettings(config_file=path))


def test_environment_settings_make_one_destination_each_and_stdout_is_the_default() -> None:
    assert [d.kind for d in load_destinations(NotifySettings())] == ["stdout"]
    settings = NotifySettings(
        slack_webhook_url="https://hooks.slack.com/x",  # type: ignore[arg-type]
        telegram_bot_token="1:A-bot-token-0123",  # type: ignore[arg-type]
        telegram_chat_id="-100",
        webhook_url="https://tools.example/hook",
        webhook_secret="k" * 16,  # type: ignore[arg-type]
    )
    assert [(d.name, d.kind) for d in load_destinations(settings)] == [
        ("slack", "slack"), ("telegram", "telegram"), ("webhook", "webhook"),
    ]  # fmt: skip
    with pytest.raises(NotifyConfigError, match="CHAT_ID"):
        load_destinations(NotifySettings(telegram_bot_token="1:A-bot-token-0123"))  # type: ignore[arg-type]


# --- which offsets may be committed -----------------------------------------------------------------------


def test_offsets_stop_below_the_oldest_alert_still_owed() -> None:
    book: OffsetBook[str] = OffsetBook()
    book.start_at("p0", 10)
    assert book.committable() == {"p0": 10}, "a fresh partition pins its starting point"
    book.committed({"p0": 10})
    tokens = [book.open("p0", offset) for offset in (10, 11, 12)]
    for token in tokens:
        book.hold(token)  # one delivery each
        book.release(token)  # the intake is done with it
    book.release(tokens[1])
    assert book.committable() == {}, "offset 10 is still owed"
    book.release(tokens[0])
    assert book.committable() == {"p0": 12}
    book.release(tokens[2])
    assert book.committable() == {"p0": 13}
    book.committed({"p0": 13})
    assert book.committable() == {}


def test_a_record_held_for_several_deliveries_at_once_needs_as_many_releases() -> None:
    book: OffsetBook[str] = OffsetBook()
    token = book.open("p0", 7)
    book.hold(token, 3)  # three alerts of the record handed out
    book.hold(token, 0)  # none: nothing to wait for
    book.release(token)  # the intake is done with it
    for _ in range(2):
        book.release(token)
        assert book.committable() == {"p0": 7}, "one delivery still waits on it"
    book.release(token)
    assert book.committable() == {"p0": 8}


def test_a_revoked_partition_is_forgotten_and_stale_releases_do_nothing() -> None:
    book: OffsetBook[str] = OffsetBook()
    old = book.open("p0", 5)
    book.forget(["p0"])
    book.start_at("p0", 3)  # assigned again: re-read from the committed offset
    fresh = book.open("p0", 3)
    book.release(old)
    assert book.committable() == {"p0": 3}
    book.release(fresh)
    assert book.committable() == {"p0": 4}


# --- one destination's worker -----------------------------------------------------------------------------


class Scripted(Destination):
    """A destination answering from a script: an error to raise, or None for accepted."""

    kind = "scripted"

    def __init__(self, *answers: DestinationError | None) -> None:
        super().__init__("scripted", Route(), Pacing(6000, 100, 1000, 60))
        self.answers = deque(answers)
        self.sent: list[tuple[float, str]] = []

    def describe(self) -> str:
        return "scripted"

    async def send(self, session: aiohttp.ClientSession, notice: Notice) -> None:
        self.sent.append((time.monotonic(), delivery_id(notice)))
        answer = self.answers.popleft() if self.answers else None
        if answer is not None:
            raise answer


def test_the_worker_waits_as_asked_retries_and_settles_refusals() -> None:
    limited = DestinationError("scripted", "HTTP 429", retryable=True, retry_after_s=0.2)
    gone = DestinationError("scripted", "HTTP 404", retryable=False)
    destination = Scripted(limited, None, gone)
    settled: list[tuple[str, str]] = []

    async def settle(outbox: Outbox, notice: Notice, outcome: str, reason: str) -> None:
        settled.append((delivery_id(notice), outcome))

    async def scenario() -> Outbox:
        outbox = Outbox(destination, settle, retry_initial_s=0.01, retry_max_s=0.1, clock=time.monotonic)
        async with aiohttp.ClientSession() as session:  # the scripted destination makes no connection
            worker = asyncio.create_task(outbox.run(session))
            outbox.offer(alert("c1", "m1"), time.monotonic())
            outbox.offer(alert("c2", "m2"), time.monotonic())
            for _ in range(200):
                if len(settled) == 2:
                    break
                await asyncio.sleep(0.01)
            outbox.stop()
            await worker
        return outbox

    outbox = asyncio.run(scenario())
    assert settled == [
        ("vk:c1:m1:unanswered_comment", "delivered"),
        ("vk:c2:m2:unanswered_comment", "refused"),
    ]
    (first, _), (second, again), _ = destination.sent
    assert again == "vk:c1:m1:unanswered_comment" and second - first >= 0.2
    assert outbox.retries == 1 and outbox.idle
