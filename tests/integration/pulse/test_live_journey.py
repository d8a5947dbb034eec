"""The live path as a user sets it up: `pulse run --webhooks`, configured only through its documented
environment settings, from the platforms' POSTs to the ops channel (a local stand-in for a JSON webhook
destination), the rows in ClickHouse and the live view.

Comments on VK, Telegram, Facebook and Instagram, shaped as each platform documents its callbacks and
stamped with the wall clock, under a 6 s SLA with an at-risk warning at half of it: unanswered ones get
`at_risk` then `unanswered_comment` at their deadlines, one answered in time gets nothing, one answered
late gets `resolved`. VK's confirmation handshake and Meta's verify handshake come first.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import uvloop

from pulse.local.local_kafka import free_port
from pulse.topics import wait_group_settled
from schemas import KafkaSettings
from tests.destination_apis import DestinationApis

SLA_S = 6.0
VK_GROUP, VK_SECRET, VK_CONFIRM = 215000111, "vk-secret-0123456789abcdef", "c0nf1rm5tr"
TG_GROUP, TG_CHANNEL, TG_SECRET = -1009876543210, -1001234567890, "tg-secret-token-0123456789"
FB_PAGE, IG_ACCOUNT = "104222333444555", "17841400000000001"
META_SECRET, META_VERIFY = "meta-app-secret-0123456789", "meta-verify-token-0123"
HOOK_SECRET = b"hook-secret-0123456789abcdef"
ROOT = Path(__file__).resolve().parents[3]


def vk(type_: str, obj: dict[str, Any], event_id: str) -> bytes:
    return orjson.dumps({"type": type_, "object": obj, "group_id": VK_GROUP, "event_id": event_id, "v": "5.199",
                         "secret": VK_SECRET})  # fmt: skip


def vk_comment(comment_id: int, date_s: int) -> bytes:
    obj = {"id": comment_id, "from_id": 734001, "date": date_s, "text": "When is the next meetup?",
           "post_id": 4410, "owner_id": -VK_GROUP, "parents_stack": []}  # fmt: skip
    return vk("wall_reply_new", obj, f"e{comment_id}")


def vk_reply(comment_id: int, to: int, date_s: int) -> bytes:
    obj = {"id": comment_id, "from_id": -VK_GROUP, "date": date_s, "text": "Friday at 7!", "post_id": 4410,
           "owner_id": -VK_GROUP, "reply_to_user": 734001, "reply_to_comment": to, "parents_stack": [to]}  # fmt: skip
    return vk("wall_reply_new", obj, f"e{comment_id}")


def telegram_comment(date_s: int) -> bytes:
    forward = {"message_id": 310, "chat": {"id": TG_GROUP, "type": "supergroup"}, "date": date_s - 60,
               "is_automatic_forward": True, "sender_chat": {"id": TG_CHANNEL, "type": "channel"},
               "forward_origin": {"type": "channel", "chat": {"id": TG_CHANNEL}, "message_id": 1201,
                                  "date": date_s - 60}}  # fmt: skip
    message = {"message_id": 311, "chat": {"id": TG_GROUP, "type": "supergroup"}, "date": date_s,
               "text": "Love this!", "from": {"id": 4242, "is_bot": False, "first_name": "Ann"},
               "message_thread_id": 310, "reply_to_message": forward}  # fmt: skip
    return orjson.dumps({"update_id": 880001, "message": message})


def facebook_comment(date_s: int) -> bytes:
    change = {"field": "feed", "value": {"item": "comment", "verb": "add", "post_id": f"{FB_PAGE}_900",
              "comment_id": "900_1", "parent_id": f"{FB_PAGE}_900", "from": {"id": "6001", "name": "Bob"},
              "message": "Where can I buy it?", "created_time": date_s}}  # fmt: skip
    return orjson.dumps({"object": "page", "entry": [{"id": FB_PAGE, "time": date_s, "changes": [change]}]})


def instagram_comment(date_s: int) -> bytes:
    change = {"field": "comments", "value": {"id": "17900000000000001", "text": "Wow",
              "from": {"id": "778899", "username": "dee"},
              "media": {"id": "18000000000000001", "media_product_type": "FEED"}}}  # fmt: skip
    return orjson.dumps(
        {"object": "instagram", "entry": [{"id": IG_ACCOUNT, "time": date_s, "changes": [change]}]}
    )


def meta_signature(body: bytes) -> dict[str, str]:
    return {
        "X-Hub-Signature-256": "sha256=" + hmac.new(META_SECRET.encode(), body, hashlib.sha256).hexdigest()
    }


@pytest.fixture
def destination() -> Any:
    with DestinationApis("unused-token", HOOK_SECRET) as apis:
        yield apis


def test_a_comment_posted_to_pulse_run_reaches_the_ops_channel_on_time(
    kafka: KafkaSettings, unique: str, tmp_path: Path, destination: DestinationApis
) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULSE_")} | {
        "PYTHONPATH": str(ROOT),
        # Only documented settings (docs/settings.md); the run's own names keep it apart from other tests.
        "PULSE_WEBHOOKS__PORT": str(port),
        "PULSE_DASHBOARD__PORT": str(free_port()),
        "PULSE_WEBHOOKS__VK": orjson.dumps({"secret": VK_SECRET, "confirmations": {str(VK_GROUP): VK_CONFIRM}}).decode(),
        "PULSE_WEBHOOKS__TELEGRAM": orjson.dumps(
            {"secret_token": TG_SECRET, "channels_by_group": {str(TG_GROUP): str(TG_CHANNEL)}}
        ).decode(),
        "PULSE_WEBHOOKS__META": orjson.dumps({"app_secret": META_SECRET, "verify_token": META_VERIFY}).decode(),
        "PULSE_NOTIFY__WEBHOOK_URL": f"{destination.base_url}/hook",
        "PULSE_NOTIFY__WEBHOOK_SECRET": HOOK_SECRET.decode(),
        "PULSE_PROCESSOR__AT_RISK_FRACTION": "0.5",
        "PULSE_NOTIFY__RATE_BURST": "30",  # 12 alerts at once: the default (5, then 20 a minute) paces them
        "PULSE_TOPICS__PREFIX": f"live{unique}-",
        "PULSE_PROCESSOR__APP_ID": f"live{unique}-processor",
        "PULSE_SINK__GROUP": f"live{unique}-sink",
        "PULSE_NOTIFY__GROUP": f"live{unique}-notify",
        "PULSE_NOTIFY__LEDGER_TOPIC": f"live{unique}-ledger",
    }  # fmt: skip
    state = tmp_path / "state"
    log = (tmp_path / "run.log").open("wb")
    run = subprocess.Popen(
        [sys.executable, "-m", "pulse", "--state-dir", str(state), "run", "--kafka", kafka.bootstrap_servers,
         "--webhooks", "--comment-sla", f"{SLA_S:g}s"],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_group_settled(
            kafka, f"live{unique}-processor", 1, 4, 120, "the run's worker", lambda: _alive(run, tmp_path)
        )
        posted = uvloop.run(_journey(url))
        _wait_for(destination, posted, run, tmp_path)
        rows = _query(
            env,
            state,
            "SELECT comment_id, answered_at IS NOT NULL, breached FROM comment_sla FINAL ORDER BY comment_id",
        )
        time.sleep(11)  # the live view prints every 10 s when not on a terminal
    finally:
        run.send_signal(signal.SIGINT)
        code = run.wait(timeout=120)
        log.close()
    output = (tmp_path / "run.log").read_text(errors="replace")
    assert code == 0, output[-3000:]

    received = _alerts(destination)
    deadlines = posted["deadlines"]
    for comment in ("vk-never", "vk-late", "telegram", "facebook", "instagram"):
        at_risk, unanswered = (
            received.get((comment, "at_risk")),
            received.get((comment, "unanswered_comment")),
        )
        assert at_risk is not None and unanswered is not None, f"{comment}: {sorted(received)}"
        assert deadlines[comment] - SLA_S / 2 - 0.1 <= at_risk <= deadlines[comment] - SLA_S / 2 + 3, comment
        assert deadlines[comment] - 0.1 <= unanswered <= deadlines[comment] + 3, (
            f"{comment}: the unanswered alert came {unanswered - deadlines[comment]:.2f} s after its deadline"
        )
    assert not [k for k in received if k[0] == "vk-in-time"], "a comment answered in time gets no alert"
    assert received[("vk-late", "resolved")] >= posted["late_reply_at"]
    assert not [k for k in received if k[0] != "vk-late" and k[1] == "resolved"]

    sla = {row[0]: (bool(row[1]), bool(row[2])) for row in rows}
    assert sla["9051"] == (False, True) and sla["9053"] == (True, False) and sla["9055"] == (True, True), sla
    assert {"311", "900_1", "17900000000000001"} <= set(sla), sla
    views = [line for line in output.splitlines() if line.startswith("events ")]
    assert views and ", alerts " in views[-1], output[-2000:]
    alerts_seen = int(views[-1].split(", alerts ")[1].split(",")[0].replace(",", ""))
    assert alerts_seen >= 11, views[-1]


async def _journey(url: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session:

        async def post(path: str, body: bytes, headers: dict[str, str] | None = None) -> str:
            async with session.post(url + path, data=body, headers=headers or {}) as answer:
                text = await answer.text()
                assert answer.status == 200, (path, answer.status, text)
                return text

        # The handshakes a platform makes before it sends anything.
        confirm = orjson.dumps({"type": "confirmation", "group_id": VK_GROUP, "secret": VK_SECRET})
        assert await post("/webhooks/vk", confirm) == VK_CONFIRM
        verify = {"hub.mode": "subscribe", "hub.verify_token": META_VERIFY, "hub.challenge": "1158201444"}
        async with session.get(url + "/webhooks/facebook", params=verify) as answer:
            assert (answer.status, await answer.text()) == (200, "1158201444")

        now = int(time.time())
        deadlines = {
            name: now + SLA_S
            for name in ("vk-never", "vk-in-time", "vk-late", "telegram", "facebook", "instagram")
        }
        await post("/webhooks/vk", vk_comment(9051, now))
        await post("/webhooks/vk", vk_comment(9053, now))
        await post("/webhooks/vk", vk_comment(9055, now))
        await post(
            "/webhooks/telegram", telegram_comment(now), {"X-Telegram-Bot-Api-Secret-Token": TG_SECRET}
        )
        fb, ig = facebook_comment(now), instagram_comment(now)
        await post("/webhooks/facebook", fb, meta_signature(fb))
        await post("/webhooks/instagram", ig, meta_signature(ig))
        await _until(now + 1.5)
        await post("/webhooks/vk", vk_reply(9054, 9053, int(time.time())))  # in time: before at-risk even
        await _until(now + SLA_S + 2.0)
        late_reply_at = time.time()
        await post("/webhooks/vk", vk_reply(9056, 9055, int(late_reply_at)))
    return {"deadlines": deadlines, "late_reply_at": late_reply_at}


async def _until(moment: float) -> None:
    import asyncio

    while time.time() < moment:
        await asyncio.sleep(0.05)


COMMENTS = {"9051": "vk-never", "9053": "vk-in-time", "9055": "vk-late", "311": "telegram",
            "900_1": "facebook", "17900000000000001": "instagram"}  # fmt: skip


def _alerts(destination: DestinationApis) -> dict[tuple[str, str], float]:
    """(comment, kind) -> when the destination received it (wall clock)."""
    offset = time.time() - time.monotonic()
    found: dict[tuple[str, str], float] = {}
    for received in destination.delivered("webhook"):
        for alert in received.body.get("alerts", []):
            found.setdefault(
                (COMMENTS.get(alert["comment_id"], alert["comment_id"]), alert["kind"]), received.at + offset
            )
    return found


def _wait_for(
    destination: DestinationApis, posted: dict[str, Any], run: subprocess.Popen[bytes], tmp: Path
) -> None:
    wanted = {("vk-late", "resolved")} | {
        (c, k) for c in ("vk-never", "vk-late", "telegram", "facebook", "instagram") for k in ("at_risk", "unanswered_comment")
    }  # fmt: skip
    deadline = time.monotonic() + 60
    while not wanted <= set(_alerts(destination)):
        _alive(run, tmp)
        assert time.monotonic() < deadline, f"missing alerts: {sorted(wanted - set(_alerts(destination)))}"
        time.sleep(0.2)
    time.sleep(SLA_S / 2)  # room for an alert that should not come (the comment answered in time)


def _query(env: dict[str, str], state: Path, sql: str) -> list[list[Any]]:
    """Through the running loader, as an analyst would while the run holds the embedded store."""
    for _ in range(50):
        done = subprocess.run(
            [sys.executable, "-m", "pulse", "--state-dir", str(state), "query", "--format", "json", sql],
            env=env, capture_output=True, timeout=60, check=False, cwd=ROOT,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr.decode()
        rows = [list(r.values()) for r in orjson.loads(done.stdout)]
        if len(rows) >= 6 and any(r[1] for r in rows if r[0] == "9055"):
            return rows
        time.sleep(0.5)
    return rows


def _alive(run: subprocess.Popen[bytes], tmp: Path) -> None:
    if run.poll() is not None:
        raise AssertionError(
            f"pulse run exited with {run.returncode}: {(tmp / 'run.log').read_text()[-3000:]}"
        )
