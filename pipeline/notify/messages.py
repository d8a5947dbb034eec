"""Alerts as messages a person on duty reads in two seconds: what happened, where, for how long, and a link.

A message is a `Notice`: one `Alert`, or a `Digest` of several alerts for one community (sent instead of
a flood during a storm). Each destination kind has its markup: Slack mrkdwn, Markdown (Mattermost),
Telegram HTML, plain text (stdout), and a JSON document for generic webhooks that carries every alert in
full plus the same text. Text from the platforms (snippets, ids) is escaped for the markup, so a comment
cannot format or forge links in the ops channel.

Times shown are the alert's own, in event time (when the comment was written, how long it had waited when
the alert fired), never the moment of sending, so a message delivered late after an outage still tells
the truth. Clock times are UTC.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec

from schemas.outputs import Alert, AlertKind
from schemas.post_links import post_url

SNIPPET_CHARS = 160
DIGEST_TOP_POSTS = 3

_PLATFORM_NAMES = {"vk": "VK", "telegram": "Telegram", "facebook": "Facebook", "instagram": "Instagram"}


@dataclass(frozen=True, slots=True)
class Digest:
    """Several alerts for one community in one message. Its `delivery_id` depends only on which alerts it
    holds, so a receiver that deduplicates can recognise a resent digest."""

    platform: str
    community_id: str
    alerts: tuple[Alert, ...]

    @property
    def delivery_id(self) -> str:
        ids = "\n".join(sorted(a.alert_id for a in self.alerts)).encode()
        return f"digest:{self.platform}:{self.community_id}:{hashlib.sha256(ids).hexdigest()[:16]}"


Notice = Alert | Digest


def delivery_id(notice: Notice) -> str:
    return notice.alert_id if isinstance(notice, Alert) else notice.delivery_id


def alerts_of(notice: Notice) -> tuple[Alert, ...]:
    return (notice,) if isinstance(notice, Alert) else notice.alerts


def community_key(alert: Alert) -> str:
    return f"{alert.platform}:{alert.community_id}"


def post_link(alert: Alert) -> str | None:
    """The post's public address where the ids allow one (`schemas.post_url`)."""
    return post_url(alert.platform, alert.community_id, alert.post_id)


def human_wait(seconds: float) -> str:
    """45s, 12m, 1h 05m, 2d 3h: precise enough to judge, short enough to read."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    minutes, _ = divmod(s, 60)
    hours, minutes = divmod(minutes, 60)
    if hours == 0:
        return f"{minutes}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h" if days else f"{hours}h {minutes:02d}m"


def snippet_line(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= SNIPPET_CHARS else flat[: SNIPPET_CHARS - 1].rstrip() + "…"


@dataclass(frozen=True, slots=True)
class Markup:
    escape: Callable[[str], str]
    bold: Callable[[str], str]
    link: Callable[[str, str], str]  # (url, label)
    quote: Callable[[str], str]


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_~\[\]()<>|#!])")

SLACK = Markup(
    escape=_slack_escape,
    bold=lambda s: f"*{s}*",
    link=lambda url, label: f"<{url}|{label}>",
    quote=lambda s: f"> {s}",
)
MARKDOWN = Markup(
    escape=lambda s: _MARKDOWN_SPECIAL.sub(r"\\\1", s),
    bold=lambda s: f"**{s}**",
    link=lambda url, label: f"[{label}]({url})",
    quote=lambda s: f"> {s}",
)
TELEGRAM_HTML = Markup(
    escape=lambda s: s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"),
    bold=lambda s: f"<b>{s}</b>",
    link=lambda url, label: f'<a href="{url}">{label}</a>',
    quote=lambda s: f"<i>{s}</i>",
)
PLAIN = Markup(escape=lambda s: s, bold=lambda s: s, link=lambda url, label: url, quote=lambda s: s)

_ICONS = {
    AlertKind.AT_RISK: "🟠",
    AlertKind.UNANSWERED: "🔴",
    AlertKind.RESOLVED: "✅",
    AlertKind.ENGAGEMENT_SPIKE: "📈",
    AlertKind.SOURCE_QUIET: "🔇",
    AlertKind.SOURCE_RECOVERED: "🔊",
}
_DIGEST_LABELS = (
    (AlertKind.UNANSWERED, "unanswered"),
    (AlertKind.AT_RISK, "at risk"),
    (AlertKind.RESOLVED, "answered"),
    (AlertKind.ENGAGEMENT_SPIKE, "spiking posts"),
    (AlertKind.SOURCE_QUIET, "quiet"),
    (AlertKind.SOURCE_RECOVERED, "recovered"),
)
COMMENT_KINDS = frozenset({AlertKind.AT_RISK, AlertKind.UNANSWERED, AlertKind.RESOLVED})


def render(notice: Notice, markup: Markup) -> str:
    return render_alert(notice, markup) if isinstance(notice, Alert) else render_digest(notice, markup)


def render_alert(alert: Alert, m: Markup) -> str:
    if alert.kind is AlertKind.ENGAGEMENT_SPIKE:
        return _render_spike(alert, m)
    if alert.kind in (AlertKind.SOURCE_QUIET, AlertKind.SOURCE_RECOVERED):
        return _render_source(alert, m)
    where = m.escape(_community(alert.platform, alert.community_id))
    if alert.kind is AlertKind.RESOLVED:
        took = alert.response_s if alert.response_s is not None else alert.waited_s
        late = " (late)" if took > alert.sla_s else ""
        title = f"Answered after {human_wait(took)}{late}, SLA {human_wait(alert.sla_s)}"
    elif alert.kind is AlertKind.AT_RISK:
        title = f"At risk: waiting {human_wait(alert.waited_s)} of {human_wait(alert.sla_s)} SLA"
    else:
        title = f"Unanswered for {human_wait(alert.waited_s)}, SLA {human_wait(alert.sla_s)}"
    lines = [f"{_ICONS[alert.kind]} {m.bold(title)} · {where}"]
    if alert.snippet.strip():
        lines.append(m.quote(f"“{m.escape(snippet_line(alert.snippet))}”"))
    lines.append(
        f"{_post(alert, m)} · commented {_utc(alert.commented_at_ms)} by {m.escape(alert.author_id)}"
    )
    return "\n".join(lines)


def _render_spike(alert: Alert, m: Markup) -> str:
    """`observed` engagement in the last `sla_s` against `expected` for posts of its age (`waited_s`)."""
    where = m.escape(_community(alert.platform, alert.community_id))
    observed, expected = alert.observed or 0.0, alert.expected or 0.0
    title = (
        f"Engagement spike: {observed:,.0f} in {human_wait(alert.sla_s)}, "
        f"usually {expected:,.1f} at {human_wait(alert.waited_s)} old"
    )
    return "\n".join(
        (
            f"{_ICONS[alert.kind]} {m.bold(title)} · {where}",
            f"{_post(alert, m)} · first seen {_utc(alert.commented_at_ms)}",
        )
    )


def _render_source(alert: Alert, m: Markup) -> str:
    """A community gone quiet (`waited_s` without events, `expected` usually in `sla_s`), or back."""
    where = m.escape(_community(alert.platform, alert.community_id))
    if alert.kind is AlertKind.SOURCE_QUIET and alert.observed:
        usually = f", usually {alert.expected:,.0f}" if alert.expected else ""
        title = f"Only {alert.observed:,.0f} events in {human_wait(alert.sla_s)}{usually}"
        hint = "check the platform token, webhook and group settings"
    elif alert.kind is AlertKind.SOURCE_QUIET:
        usually = f", usually {alert.expected:,.0f} in {human_wait(alert.sla_s)}" if alert.expected else ""
        title = f"No events for {human_wait(alert.waited_s)}{usually}"
        hint = "check the platform token, webhook and group settings"
    else:
        title = f"Events again after {human_wait(alert.waited_s)} quiet"
        hint = f"{alert.observed or 0:,.0f} since"
    return "\n".join(
        (
            f"{_ICONS[alert.kind]} {m.bold(title)} · {where}",
            f"last event before {_utc(alert.commented_at_ms)} · {hint}",
        )
    )


def render_digest(digest: Digest, m: Markup) -> str:
    alerts = digest.alerts
    kinds = Counter(a.kind for a in alerts)
    counts = ", ".join(f"{kinds[kind]} {label}" for kind, label in _DIGEST_LABELS if kinds[kind])
    where = m.escape(_community(digest.platform, digest.community_id))
    lines = [f"🚨 {m.bold(f'{len(alerts)} alerts')} · {where}: {counts}"]
    waiting = [a for a in alerts if a.kind in (AlertKind.AT_RISK, AlertKind.UNANSWERED)]
    if waiting:
        longest = max(waiting, key=lambda a: a.waited_s)
        lines.append(f"Longest wait {human_wait(longest.waited_s)}, SLA {human_wait(longest.sla_s)}")
    by_post = Counter(a.post_id for a in alerts if a.post_id)
    first_of_post = {a.post_id: a for a in reversed(alerts)}
    busiest = ", ".join(
        f"{_post(first_of_post[post], m)} ({n})" for post, n in by_post.most_common(DIGEST_TOP_POSTS)
    )
    more = f" and {len(by_post) - DIGEST_TOP_POSTS} more" if len(by_post) > DIGEST_TOP_POSTS else ""
    if busiest:
        lines.append(f"Busiest: {busiest}{more}")
    latest = max(alerts, key=lambda a: a.fired_at_ms)
    if latest.snippet.strip():
        lines.append(m.quote(f"Latest: “{m.escape(snippet_line(latest.snippet))}”"))
    return "\n".join(lines)


def webhook_payload(notice: Notice, sent_at: datetime) -> dict[str, Any]:
    """The generic webhook's JSON: `delivery_id` is stable across resends (deduplicate on it)."""
    alerts = alerts_of(notice)
    return {
        "type": "alert" if isinstance(notice, Alert) else "digest",
        "delivery_id": delivery_id(notice),
        "platform": alerts[0].platform,
        "community_id": alerts[0].community_id,
        "sent_at": sent_at.astimezone(UTC).isoformat(),
        "text": render(notice, PLAIN),
        "alerts": [_alert_document(a) for a in alerts],
    }


def _alert_document(alert: Alert) -> dict[str, Any]:
    document: dict[str, Any] = msgspec.to_builtins(alert)
    document.pop("record", None)
    document["post_url"] = post_link(alert)
    document["commented_at"] = _iso(alert.commented_at_ms)
    document["fired_at"] = _iso(alert.fired_at_ms)
    return document


def _community(platform: str, community_id: str) -> str:
    return f"{_PLATFORM_NAMES.get(platform, platform)} {community_id}"


def _post(alert: Alert, m: Markup) -> str:
    url = post_link(alert)
    label = f"post {m.escape(alert.post_id)}"
    return m.link(url, label) if url else label


def _utc(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC).strftime("%d %b %H:%M UTC")


def _iso(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC).isoformat(timespec="milliseconds")
