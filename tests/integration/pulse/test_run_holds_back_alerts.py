"""`pulse run --replay FILE --exit-when-done` is a backfill: its notifier posts none of the alerts, only one
line per destination saying how many it held back, and leaves no group or ledger behind; with
`--post-old-alerts` it posts them all. A real run (broker, worker, loader, notifier) to the stand-in
webhook, on the end-to-end test's scenario."""

from __future__ import annotations

import os
import re
from pathlib import Path

from kafka import KafkaAdminClient

from schemas import KafkaSettings
from tests.destination_apis import DestinationApis
from tests.integration.pulse.test_run_end_to_end import build, pulse, query

SECRET = "webhook-secret-0123456789"


def replay(
    kafka: KafkaSettings, tmp_path: Path, apis: DestinationApis, *more: str, **settings: str
) -> tuple[str, Path]:
    """Runs the scenario with the stand-in webhook as the one destination; the store and the run's notify
    log."""
    scenario = build()
    file = tmp_path / "scenario.ndjson"
    file.write_bytes(b"\n".join(scenario.lines) + b"\n")
    store = f"chdb://{tmp_path / 'store'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULSE_")} | {
        "COLUMNS": "200",
        "PULSE_NOTIFY__WEBHOOK_URL": f"{apis.base_url}/hook",
        "PULSE_NOTIFY__WEBHOOK_SECRET": SECRET,
        **{f"PULSE_NOTIFY__{k.upper()}": v for k, v in settings.items()},
    }
    args = ["--state-dir", str(tmp_path / "state"), "run", "--replay", str(file), "--exit-when-done",
            "--kafka", kafka.bootstrap_servers, "--clickhouse", store, "--comment-sla", "30m",
            "--lateness", "10m", "--partitions", "2", *more]  # fmt: skip
    done = pulse(env, *args)
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-2000:]
    (log,) = (tmp_path / "state" / "run").glob("*/notify.log")
    return store, log


def test_a_backfill_posts_one_line_saying_how_many_alerts_it_held_back(
    kafka: KafkaSettings, tmp_path: Path
) -> None:
    with DestinationApis("123456:unused", SECRET.encode()) as apis:
        store, log = replay(kafka, tmp_path, apis)
        delivered = apis.delivered("webhook")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULSE_")}
    (alerts,) = query(env, store, "SELECT count() FROM alerts FINAL")[0]
    assert alerts > 10
    assert [r.body["type"] for r in delivered] == ["held_back"], log.read_text()[-3000:]
    assert delivered[0].body["held_back"] == alerts, "every alert of the replay, announced once"

    # The run's own notifier group and delivery ledger went with its topics.
    started = re.search(r"notifier (\S+): (\S+)alerts on", log.read_text())
    assert started is not None, log.read_text()[-3000:]
    group, prefix = started.groups()
    assert group.startswith(prefix), "a group of the run's own, never the live notifiers'"
    admin = KafkaAdminClient(**kafka.client_config())
    try:
        assert group not in {g["group_id"] for g in admin.list_groups()}
        assert not [t for t in admin.list_topics() if t.startswith(prefix)]
    finally:
        admin.close()


def test_post_old_alerts_posts_a_backfill_s_alerts(kafka: KafkaSettings, tmp_path: Path) -> None:
    with DestinationApis("123456:unused", SECRET.encode()) as apis:
        # Fast enough that every alert is out before the run stops (one message each, no digests).
        store, log = replay(
            kafka, tmp_path, apis, "--post-old-alerts",
            rate_per_minute="6000", rate_burst="1000", digest_threshold="10000",
        )  # fmt: skip
        delivered = apis.delivered("webhook")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULSE_")}
    stored = {row[0] for row in query(env, store, "SELECT alert_id FROM alerts FINAL")}
    assert {r.body["type"] for r in delivered} == {"alert"}, log.read_text()[-3000:]
    assert {a["alert_id"] for r in delivered for a in r.body["alerts"]} == stored
