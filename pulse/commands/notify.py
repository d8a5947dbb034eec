"""`pulse notify`: alerts from the alerts topic to the people on duty (Slack, Mattermost, Telegram, webhooks)."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path
from typing import Any

import click

from pipeline.notify.destinations import build_destinations
from pipeline.notify.messages import human_wait
from pipeline.notify.notifier import Notifier
from pipeline.notify.settings import load_destinations
from pulse.commands.support import Context, Duration, err_console, fail_cleanly, stop_on_signals
from pulse.settings import on_cluster
from pulse.topics import ensure_topics


@click.command("notify")
@click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="TOML file listing the destinations and their routes (docs/alerts.md). Env: PULSE_NOTIFY__CONFIG_FILE",
)
@click.option(
    "--group",
    help="Consumer group; notifiers in one group share the work. Env: PULSE_NOTIFY__GROUP. Default: community-pulse-notify",
)
@click.option(
    "--from-beginning",
    is_flag=True,
    help="A group that never ran starts at the oldest alert in the topic instead of the next new one. Env: PULSE_NOTIFY__START_FROM=earliest",
)
@click.option(
    "--digest-threshold",
    type=click.IntRange(1, 10_000),
    help="More alerts than this for one community within the digest window become one digest. Env: PULSE_NOTIFY__DIGEST_THRESHOLD. Default: 5",
)
@click.option(
    "--digest-window",
    "digest_window_s",
    type=Duration(),
    help="The storm window, e.g. 1m. Env: PULSE_NOTIFY__DIGEST_WINDOW_S. Default: 60s",
)
@click.pass_obj
@fail_cleanly
def notify(
    obj: Context,
    config_file: Path | None,
    group: str | None,
    from_beginning: bool,
    digest_threshold: int | None,
    digest_window_s: float | None,
) -> None:
    """Deliver alerts (at risk, unanswered comment, resolved) to the ops channel, each alert once to each
    destination whose route matches it.

    Destinations: Slack or Mattermost incoming webhooks, a Telegram chat through the Bot API, a JSON webhook
    (HMAC-signed), stdout. Several at once, each with optional routing by community, alert kind and
    platform: list them in a TOML file (--config), or set one through the environment
    (PULSE_NOTIFY__SLACK_WEBHOOK_URL, PULSE_NOTIFY__TELEGRAM_BOT_TOKEN + _CHAT_ID, PULSE_NOTIFY__WEBHOOK_URL).
    With none configured, alerts are printed on stdout.

    A storm (more alerts for one community than --digest-threshold within --digest-window) becomes one
    digest per window. Each destination is rate-limited and retried on its own, honouring Retry-After; one
    that is down does not hold up the others and gets its alerts when it returns. Offsets are committed
    once every destination has its alerts, and a ledger topic keeps a restart from posting twice.

    Alerts that fired (event time) longer ago than PULSE_NOTIFY__MAX_ALERT_AGE_S (default 2h; a backfill's,
    or a backlog's after a long outage) are held back: recorded, not posted, and announced in one line per
    destination once they stop coming (PULSE_NOTIFY__HELD_BACK_QUIET_S) or at shutdown.

    Stops cleanly on SIGTERM/Ctrl-C: held digests and queued alerts go out (for up to
    PULSE_NOTIFY__SHUTDOWN_TIMEOUT_S), offsets are committed, exit code 0.
    """
    overrides: dict[str, Any] = {
        "config_file": config_file,
        "group": group,
        "start_from": "earliest" if from_beginning else None,
        "digest_threshold": digest_threshold,
        "digest_window_s": digest_window_s,
    }
    settings = on_cluster(obj.settings(notify={k: v for k, v in overrides.items() if v is not None}))
    destinations = build_destinations(load_destinations(settings.notify), settings.notify)
    topics = settings.topics.names
    wanted = settings.topics.partitions(topics)
    ensure_topics(
        settings.kafka,
        {name: wanted[name] for name in (topics.alerts, topics.dead_letters)},
        settings.topics.replicas,
        settings.topics.retention_bytes,
        settings.topics.retention_ms(topics),
    )
    notifier = Notifier(
        settings.notify, settings.kafka, topics, destinations,
        ledger_topic=settings.topics.prefix + settings.notify.ledger_topic,
        replication_factor=settings.topics.replicas,
    )  # fmt: skip
    max_age_s = settings.notify.max_alert_age_s
    holding = (
        "posting alerts however old" if max_age_s is None
        else "holding back every alert" if max_age_s == 0
        else f"holding back alerts older than {human_wait(max_age_s)}"
    )  # fmt: skip
    err_console.print(
        f"notifier {settings.notify.group}: {topics.alerts} on {settings.kafka.bootstrap_servers} -> "
        + ", ".join(d.describe() for d in destinations)
        + f"; {holding}",
        highlight=False,
        soft_wrap=True,
    )
    # What start-up made (modules, settings: some 80,000 objects) is kept for good: frozen out of the cycle
    # collector's reach, so its full collections, a few in a backfill, walk only what came since. They were
    # 0.33 s of CPU of a notifier holding back 111,000 alerts, 0.09 s frozen.
    gc.freeze()
    with stop_on_signals() as should_stop:
        stats = asyncio.run(notifier.run(should_stop))
    err_console.print(
        f"stopped: {stats.alerts:,} alerts read, {stats.messages:,} messages sent ({stats.digests:,} digests, "
        f"{stats.alerts_delivered:,} alerts), {stats.already_delivered:,} already delivered, "
        f"{stats.retries:,} retries, {stats.dead_letters:,} dead-lettered, {stats.held_back:,} held back as "
        f"too old ({stats.held_back_lines:,} lines saying so)",
        highlight=False,
        soft_wrap=True,
    )
