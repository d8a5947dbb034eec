"""`pulse notify` on the real broker against stand-ins for Slack, Telegram and a webhook on a real port:
once per destination (also across kill -9), Retry-After, a destination down, a storm."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaProducer

from pipeline.notify.destinations import build_destinations
from pipeline.notify.notifier import Notifier, NotifierStats
from pipeline.notify.settings import (
    DestinationConfig,
    NotifySettings,
    SlackDestination,
    TelegramDestination,
    WebhookDestination,
)
from pulse.topics import ensure_topics, group_lag
from schemas import DLQ_CODE, KafkaSettings, Topics
from schemas.outputs import Alert, AlertKind, PartitionStats, encode_outputs
from tests.destination_apis import DestinationApis
from tests.kafka_reading import read_all

TOKEN = "123456:TEST-TOKEN"
SECRET = b"webhook-secret-0123456789"  # 16 characters at least, as every secret
HOUR_MS = 3_600_000
FAST = {  # quick retries, commits and hand-overs; no rate limit in the way unless a test sets one
    "start_from": "earliest", "rate_per_minute": 6000, "rate_burst": 1000, "retry_initial_s": 0.2,
    "retry_max_s": 1.0, "request_timeout_s": 5, "commit_interval_s": 0.2, "session_timeout_s": 6,
    "shutdown_timeout_s": 5, "digest_threshold": 1000,
}  # fmt: skip


def alert(
    community: str, comment: str, kind: AlertKind = AlertKind.UNANSWERED, fired_ago_s: float = 0.0
) -> Alert:
    """An alert that fired `fired_ago_s` before now (wall clock): by default news, for the age limit."""
    fired_ms = time.time_ns() // 1_000_000 - int(fired_ago_s * 1000)
    return Alert(
        alert_id=f"vk:{community}:{comment}:{kind.value}", kind=kind, platform="vk", community_id=community,
        post_id="678", comment_id=comment, author_id="u1", snippet=f"comment {comment}?",
        commented_at_ms=fired_ms - HOUR_MS, fired_at_ms=fired_ms, waited_s=3600.0, sla_s=3600.0,
        response_s=4000.0 if kind is AlertKind.RESOLVED else None,
    )  # fmt: skip


@pytest.fixture
def apis() -> Iterator[DestinationApis]:
    with DestinationApis(TOKEN, SECRET) as running:
        yield running


@pytest.fixture
def topics(kafka: KafkaSettings, unique: str) -> Topics:
    names = Topics.prefixed(f"n{unique}-")
    ensure_topics(kafka, {names.alerts: 2, names.dead_letters: 1}, 1)
    return names


def destinations(apis: DestinationApis, **routes: dict[str, Any]) -> list[DestinationConfig]:
    """Slack, Telegram and the webhook at the stand-ins; `routes` adds route fields by destination name."""
    return [
        SlackDestination(name="slack", kind="slack", url=f"{apis.base_url}/slack/T0/B0/X", **routes.get("slack", {})),  # type: ignore[arg-type]
        TelegramDestination(name="telegram", kind="telegram", bot_token=TOKEN, chat_id="-100", api_url=apis.base_url, **routes.get("telegram", {})),  # type: ignore[arg-type]
        WebhookDestination(name="webhook", kind="webhook", url=f"{apis.base_url}/hook", secret=SECRET.decode(), **routes.get("webhook", {})),  # type: ignore[arg-type]
    ]  # fmt: skip


def produce(kafka: KafkaSettings, topics: Topics, alerts: list[Alert], *extra: bytes) -> None:
    producer = KafkaProducer(**kafka.client_config(), acks="all")
    sent = [
        producer.send(topics.alerts, key=f"vk:{a.community_id}".encode(), value=encode_outputs([a]))
        for a in alerts
    ]
    sent += [producer.send(topics.alerts, key=b"vk:x", value=value) for value in extra]
    for future in sent:
        future.get(timeout=30)
    producer.close()


def eventually(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s} s: {what}")
        time.sleep(0.05)


class InProcess:
    """A `Notifier` on its own event loop in a thread, stopped as SIGTERM would stop it."""

    def __init__(self, kafka: KafkaSettings, topics: Topics, configs: list[DestinationConfig], group: str, **settings: Any) -> None:  # fmt: skip
        self.settings = NotifySettings(group=group, **{**FAST, **settings})
        built = build_destinations(configs, self.settings)
        self.notifier = Notifier(self.settings, kafka, topics, built, ledger_topic=f"{topics.alerts}-ledger")
        self._stop = threading.Event()
        self.stats: NotifierStats | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        try:
            self.stats = asyncio.run(self.notifier.run(self._stop.is_set))
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread, raised there
            self.error = exc

    def __enter__(self) -> InProcess:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(60)
        assert not self._thread.is_alive(), "the notifier did not stop"
        if self.error is not None and exc_info[0] is None:
            raise self.error


def notify_process(
    apis: DestinationApis, kafka: KafkaSettings, topics: Topics, group: str, tmp_path: Path, log: Path,
    **settings: Any,
) -> Callable[[], subprocess.Popen[bytes]]:  # fmt: skip
    """Starts `pulse notify` as its own process (for kill -9) to the three stand-ins; output to `log`."""
    config = tmp_path / "notify.toml"
    config.write_text(
        f'[[destination]]\nname = "slack"\nkind = "slack"\nurl = "{apis.base_url}/slack/T0/B0/X"\n\n'
        f'[[destination]]\nname = "telegram"\nkind = "telegram"\nbot_token = "{TOKEN}"\nchat_id = "-100"\napi_url = "{apis.base_url}"\n\n'
        f'[[destination]]\nname = "webhook"\nkind = "webhook"\nurl = "{apis.base_url}/hook"\nsecret = "{SECRET.decode()}"\n'
    )  # fmt: skip
    env = {
        **os.environ,
        "PULSE_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "PULSE_TOPICS__PREFIX": topics.alerts.removesuffix("alerts"),
        "PULSE_STATE_DIR": str(tmp_path / "state"),
        "PULSE_NOTIFY__GROUP": group,
        **{f"PULSE_NOTIFY__{k.upper()}": str(v) for k, v in {**FAST, **settings}.items()},
    }
    command = [sys.executable, "-m", "pulse", "notify", "--config", str(config)]

    def start() -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)

    return start


def stop_once_delivered(
    notifier: subprocess.Popen[bytes],
    delivered: Callable[[], bool],
    log: Path,
    within_s: float,
    stop_s: float,
) -> None:
    """Waits until `delivered()` (the notifier still running), lets anything posted twice arrive, then
    stops it with SIGTERM, which must end it with exit code 0 within `stop_s`. The caller kills it if this
    raises."""
    eventually(lambda: delivered() or notifier.poll() is not None, within_s, "every alert delivered")
    assert notifier.poll() is None, log.read_text()[-4000:]
    time.sleep(0.5)  # anything posted twice would arrive now
    notifier.send_signal(signal.SIGTERM)
    assert notifier.wait(stop_s) == 0, log.read_text()[-4000:]


def alert_ids(apis: DestinationApis) -> list[str]:
    """Every alert id the webhook received, alone or in digests (its documents carry them all)."""
    return [a["alert_id"] for r in apis.delivered("webhook") for a in r.body["alerts"]]


def texts(apis: DestinationApis, api: str) -> list[str]:
    return [r.body["text"] for r in apis.delivered(api)]


def test_each_alert_reaches_each_matching_destination_once(
    kafka: KafkaSettings, topics: Topics, apis: DestinationApis, unique: str
) -> None:
    alerts = [alert(c, f"m{i}", kind) for c in ("c1", "c2", "c3") for i in range(4) for kind in (AlertKind.AT_RISK, AlertKind.UNANSWERED)]  # fmt: skip
    alerts.append(alert("c2", "m0", AlertKind.RESOLVED))
    stats = encode_outputs([PartitionStats(0, 1, 0, 0, 0, 0, 0, 0)])  # not an alert: ignored
    produce(kafka, topics, alerts, stats, b"\xff not processor output")
    configs = destinations(
        apis, telegram={"communities": ["vk:c2"]}, webhook={"kinds": ["unanswered_comment"]}
    )
    wanted = {
        "slack": len(alerts),
        "telegram": sum(a.community_id == "c2" for a in alerts),
        "webhook": sum(a.kind is AlertKind.UNANSWERED for a in alerts),
    }
    group = f"n{unique}"
    with InProcess(kafka, topics, configs, group) as running:
        for api, count in wanted.items():
            eventually(
                lambda api=api, count=count: len(apis.delivered(api)) >= count, 30, f"{api} has {count}"
            )  # type: ignore[misc]
        eventually(
            lambda: sum(group_lag(kafka, group, [topics.alerts]).values()) == 0, 10, "offsets committed"
        )
    assert running.stats is not None and running.stats.dead_letters == 1
    assert {api: len(apis.delivered(api)) for api in wanted} == wanted, "once each"
    webhook_ids = alert_ids(apis)
    assert sorted(webhook_ids) == sorted(a.alert_id for a in alerts if a.kind is AlertKind.UNANSWERED)
    first = apis.delivered("webhook")[0]
    assert first.headers["Idempotency-Key"] == first.headers["X-Pulse-Alert-Id"] == first.body["delivery_id"]
    assert all("VK c2" in r.body["text"] for r in apis.delivered("telegram"))
    assert "https://vk.com" not in apis.delivered("slack")[0].body["text"], "c1 is no VK group id: no link"
    (dead,) = read_all(kafka, topics.dead_letters)
    assert dead.value == b"\xff not processor output" and dead.headers[DLQ_CODE] == b"undecodable"


def test_a_429_is_retried_after_the_delay_the_api_asked_for(
    kafka: KafkaSettings, topics: Topics, apis: DestinationApis, unique: str
) -> None:
    apis.script("telegram", (429, 2))
    apis.script("slack", (429, 1))
    produce(kafka, topics, [alert("c1", "m1")])
    with InProcess(kafka, topics, destinations(apis), f"n{unique}"):
        eventually(lambda: len(apis.delivered("telegram")) == 1 and len(apis.delivered("slack")) == 1, 30, "delivered after the 429s")  # fmt: skip
    for api, asked in (("telegram", 2.0), ("slack", 1.0)):
        first, second = apis.attempts(api)
        assert second - first >= asked, f"{api} was retried before its retry-after"
        assert len(apis.delivered(api)) == 1


def test_a_destination_down_holds_up_no_other_and_gets_its_alerts_back(
    kafka: KafkaSettings, topics: Topics, apis: DestinationApis, unique: str
) -> None:
    apis.down("webhook", 500)
    alerts = [alert(f"c{i}", "m1") for i in range(20)]
    produce(kafka, topics, alerts)
    group = f"n{unique}"
    with InProcess(kafka, topics, destinations(apis), group):
        eventually(lambda: len(apis.delivered("slack")) == 20 and len(apis.delivered("telegram")) == 20, 30, "healthy ones delivered")  # fmt: skip
        assert apis.delivered("webhook") == [] and len(apis.attempts("webhook")) >= 1
        time.sleep(0.5)  # a few commit intervals
        assert sum(group_lag(kafka, group, [topics.alerts]).values()) > 0, (
            "not committed past what the webhook owes"
        )
        apis.down("webhook", None)
        eventually(lambda: len(alert_ids(apis)) >= 20, 30, "the webhook caught up")
        eventually(
            lambda: sum(group_lag(kafka, group, [topics.alerts]).values()) == 0, 10, "offsets committed"
        )
    assert sorted(alert_ids(apis)) == sorted(a.alert_id for a in alerts)
    assert len(apis.delivered("slack")) == 20


def test_a_storm_gives_a_few_digests_not_hundreds_of_messages(
    kafka: KafkaSettings, topics: Topics, apis: DestinationApis, unique: str
) -> None:
    storm = [alert("c1", f"m{i}") for i in range(500)]
    produce(kafka, topics, storm)
    configs = [c for c in destinations(apis) if c.name != "telegram"]
    with InProcess(kafka, topics, configs, f"n{unique}", digest_threshold=5, digest_window_s=1.0):
        eventually(lambda: len(alert_ids(apis)) >= 500, 30, "the storm delivered")
        time.sleep(0.3)
    assert Counter(alert_ids(apis)) == Counter(a.alert_id for a in storm), "every alert once"
    slack = texts(apis, "slack")
    digested = [int(m.group(1)) for text in slack if (m := re.match(r"🚨 \*(\d+) alerts\*", text))]
    assert 5 < len(slack) <= 12 and digested, [text[:40] for text in slack]
    assert len(slack) - len(digested) + sum(digested) == 500, "the digests cover the rest of the storm"


def test_kill_9_mid_way_then_restart_delivers_everything_once(
    kafka: KafkaSettings, topics: Topics, apis: DestinationApis, unique: str, tmp_path: Path
) -> None:
    alerts = [alert(f"c{i % 6}", f"m{i}") for i in range(60)]
    produce(kafka, topics, alerts)
    log = tmp_path / "notify.log"
    start = notify_process(apis, kafka, topics, f"n{unique}", tmp_path, log, request_timeout_s=30)

    # Each destination stops mid-way, waiting for an answer that never comes; then the process dies.
    holds = [apis.hold_at("slack", 15), apis.hold_at("telegram", 25), apis.hold_at("webhook", 35)]
    first = start()
    try:
        eventually(
            lambda: all(h.is_set() for h in holds) or first.poll() is not None,
            60,
            "every destination mid-way",
        )
        assert first.poll() is None, log.read_text()[-3000:]
        first.send_signal(signal.SIGKILL)
        first.wait(30)
    finally:
        if first.poll() is None:
            first.kill()
    apis.release()
    before = {api: len(apis.delivered(api)) for api in ("slack", "telegram", "webhook")}
    assert before == {"slack": 14, "telegram": 24, "webhook": 34}
    second = start()
    try:
        stop_once_delivered(
            second, lambda: all(len(apis.delivered(api)) >= 60 for api in before), log, 60, 30
        )
    finally:
        if second.poll() is None:
            second.kill()
    for api in before:
        assert len(apis.delivered(api)) == 60, (api, log.read_text()[-3000:])
    assert sorted(alert_ids(apis)) == sorted(a.alert_id for a in alerts)
    assert len(set(texts(apis, "slack"))) == 60 and len(set(texts(apis, "telegram"))) == 60
    assert sum(group_lag(kafka, f"n{unique}", [topics.alerts]).values()) == 0
    summary = log.read_text().strip().splitlines()[-1]
    skipped = re.search(r"(\d+) already delivered", summary)
    assert skipped and int(skipped.group(1)) > 0, f"the restart re-read delivered alerts: {summary}"


# --- alerts too old to post -------------------------------------------------------------------------------

THREE_HOURS_S = 3 * 3_600.0


def held_back_lines(apis: DestinationApis, api: str) -> list[int]:
    """The counts announced to `api` by lines about held-back alerts, in order."""
    if api == "webhook":
        return [r.body["held_back"] for r in apis.delivered(api) if r.body["type"] == "held_back"]
    found = [re.search(r"Held back ([\d,]+) historical alert", text) for text in texts(apis, api)]
    return [int(m.group(1).replace(",", "")) for m in found if m is not None]


def test_alerts_older_than_the_limit_are_not_posted_and_the_held_back_count_is_posted_once(
    kafka: KafkaSettings, topics: Topics, apis: DestinationApis, unique: str
) -> None:
    old = [alert(f"c{i % 3}", f"old{i}", fired_ago_s=THREE_HOURS_S + i) for i in range(60)]
    fresh = [alert("c1", f"new{i}", fired_ago_s=60) for i in range(3)]
    produce(kafka, topics, old[:30] + fresh + old[30:])
    configs = destinations(apis, telegram={"communities": ["vk:c2"]})  # 20 of the old ones, no fresh one
    group = f"n{unique}"
    wanted = {"slack": [60], "telegram": [20], "webhook": [60]}
    with InProcess(kafka, topics, configs, group, max_alert_age_s=7_200, held_back_quiet_s=0.5) as running:
        eventually(lambda: {api: held_back_lines(apis, api) for api in wanted} == wanted, 30, "one line each")
        eventually(lambda: len(alert_ids(apis)) == 3, 10, "the fresh alerts posted")
        eventually(
            lambda: sum(group_lag(kafka, group, [topics.alerts]).values()) == 0, 10, "offsets committed"
        )
        time.sleep(1.5)  # three quiet periods: a second line would come now
    assert {api: held_back_lines(apis, api) for api in wanted} == wanted, "once"
    assert sorted(alert_ids(apis)) == sorted(a.alert_id for a in fresh), "no old alert reached the webhook"
    assert len(apis.delivered("slack")) == 1 + 3 and len(apis.delivered("telegram")) == 1
    (line,) = [t for t in texts(apis, "slack") if "Held back" in t]
    assert "older than 2h 00m" in line and "pulse query" in line
    assert running.stats is not None and running.stats.held_back == 140 and running.stats.held_back_lines == 3

    # Another group reads the same alerts with no age limit at all: the ledger knows every one of them.
    again = f"n{unique}-again"
    with InProcess(kafka, topics, configs, again, max_alert_age_s=None, held_back_quiet_s=0.5) as rerun:
        eventually(lambda: sum(group_lag(kafka, again, [topics.alerts]).values()) == 0, 30, "all read again")
        time.sleep(1.0)
    assert rerun.stats is not None and rerun.stats.already_delivered == 63 + 20 + 63
    assert rerun.stats.messages == 0 and rerun.stats.held_back == 0
    assert {api: held_back_lines(apis, api) for api in wanted} == wanted
    assert len(apis.delivered("slack")) == 4


def test_held_back_alerts_a_killed_notifier_did_not_announce_are_announced_once_after_the_restart(
    kafka: KafkaSettings, topics: Topics, apis: DestinationApis, unique: str, tmp_path: Path
) -> None:
    old = [alert(f"c{i % 4}", f"old{i}", fired_ago_s=THREE_HOURS_S) for i in range(40)]
    produce(kafka, topics, old)
    group = f"n{unique}"
    log = tmp_path / "notify.log"
    start = notify_process(apis, kafka, topics, group, tmp_path, log, held_back_quiet_s=300)

    def stopped(process: subprocess.Popen[bytes], how: signal.Signals) -> int:
        try:
            process.send_signal(how)
            return process.wait(30)
        finally:
            if process.poll() is None:
                process.kill()

    first = start()
    # Committed offsets mean the ledger has every held-back alert; the line waits for a quiet 300 s.
    eventually(
        lambda: sum(group_lag(kafka, group, [topics.alerts]).values()) == 0 or first.poll() is not None,
        60,
        "all held back",
    )
    assert first.poll() is None, log.read_text()[-3000:]
    stopped(first, signal.SIGKILL)
    assert all(apis.delivered(api) == [] for api in ("slack", "telegram", "webhook")), "nothing posted"

    second = start()
    eventually(
        lambda: "still to be announced" in log.read_text() or second.poll() is not None, 60, "restarted"
    )
    assert stopped(second, signal.SIGTERM) == 0, log.read_text()[-3000:]
    for api in ("slack", "telegram", "webhook"):
        assert held_back_lines(apis, api) == [40], (api, log.read_text()[-3000:])

    mark = len(log.read_text())
    third = start()
    eventually(
        lambda: "partitions changed" in log.read_text()[mark:] or third.poll() is not None,
        60,
        "started again",
    )
    assert stopped(third, signal.SIGTERM) == 0, log.read_text()[-3000:]
    for api in ("slack", "telegram", "webhook"):
        assert held_back_lines(apis, api) == [40] and len(apis.delivered(api)) == 1, api
    assert log.read_text().count("still to be announced") == 3, "the second run's, one per destination"
