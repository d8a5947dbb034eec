"""Alerts as messages: links per platform, the two-second read, escaping, digests, the webhook document."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from pipeline.notify.messages import (
    MARKDOWN,
    PLAIN,
    SLACK,
    TELEGRAM_HTML,
    Digest,
    delivery_id,
    human_wait,
    post_link,
    render,
    snippet_line,
    webhook_payload,
)
from schemas.outputs import Alert, AlertKind

T0_MS = 1_767_268_800_000  # 2026-01-01T12:00:00Z


def alert(kind: AlertKind = AlertKind.UNANSWERED, **fields: Any) -> Alert:
    values: dict[str, Any] = {
        "platform": "vk", "community_id": "12345", "post_id": "678", "comment_id": "m1", "author_id": "u4",
        "snippet": "Where is my order?", "commented_at_ms": T0_MS, "fired_at_ms": T0_MS + 3_900_000,
        "waited_s": 3_900.0, "sla_s": 3_600.0, **fields,
    }  # fmt: skip
    comment = values["comment_id"]
    alert_id = f"{values['platform']}:{values['community_id']}:{comment}:{kind.value}"
    return Alert(alert_id=alert_id, kind=kind, **values)


def test_an_alert_links_its_post_by_the_contract_s_rule() -> None:
    """The rule itself is tested in tests/unit/schemas/test_post_links.py."""
    assert post_link(alert()) == "https://vk.com/wall-12345_678"
    assert post_link(alert(community_id="c1")) is None


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(0, "0s"), (45.4, "45s"), (60, "1m"), (725, "12m"), (3_900, "1h 05m"), (86_400 * 2 + 3 * 3600, "2d 3h")],
)
def test_waits_read_at_a_glance(seconds: float, shown: str) -> None:
    assert human_wait(seconds) == shown


def test_an_unanswered_alert_says_where_what_how_long_and_links_the_post() -> None:
    text = render(alert(), SLACK)
    first, quote, last = text.split("\n")
    assert first == "🔴 *Unanswered for 1h 05m, SLA 1h 00m* · VK 12345"
    assert quote == "> “Where is my order?”"
    assert last == "<https://vk.com/wall-12345_678|post 678> · commented 01 Jan 12:00 UTC by u4"


def test_at_risk_and_resolved_read_differently() -> None:
    at_risk = render(alert(AlertKind.AT_RISK, waited_s=2_880.0), PLAIN)
    assert at_risk.startswith("🟠 At risk: waiting 48m of 1h 00m SLA · VK 12345")
    resolved = render(alert(AlertKind.RESOLVED, response_s=4_440.0), PLAIN)
    assert resolved.startswith("✅ Answered after 1h 14m (late), SLA 1h 00m · VK 12345")
    in_time = render(alert(AlertKind.RESOLVED, response_s=600.0), PLAIN)
    assert "Answered after 10m, SLA" in in_time


def test_platform_text_cannot_format_or_forge_links() -> None:
    sneaky = alert(snippet="<https://evil.example|click> *bold* & <b>x</b> [a](b)")
    assert "<https://evil" not in render(sneaky, SLACK)
    assert "&lt;https://evil.example|click&gt;" in render(sneaky, SLACK)
    assert "<b>x</b>" not in render(sneaky, TELEGRAM_HTML).split("\n")[1]
    assert "&lt;b&gt;x&lt;/b&gt;" in render(sneaky, TELEGRAM_HTML)
    assert r"\[a\]\(b\)" in render(sneaky, MARKDOWN)


def test_snippets_are_one_short_line() -> None:
    line = snippet_line("first line\n\nsecond   line " + "x" * 500)
    assert "\n" not in line and line.startswith("first line second line")
    assert len(line) == 160 and line.endswith("…")


def test_a_digest_summarises_a_storm_in_a_few_lines() -> None:
    alerts = (
        [alert(comment_id=f"a{i}", post_id="678", waited_s=60.0 * i) for i in range(1, 31)]
        + [alert(AlertKind.AT_RISK, comment_id=f"b{i}", post_id="700", waited_s=1_500.0) for i in range(12)]
        + [alert(AlertKind.RESOLVED, comment_id="c1", post_id="701", response_s=5.0)]
    )
    text = render(Digest("vk", "12345", tuple(alerts)), SLACK)
    lines = text.split("\n")
    assert lines[0] == "🚨 *43 alerts* · VK 12345: 30 unanswered, 12 at risk, 1 answered"
    assert lines[1] == "Longest wait 30m, SLA 1h 00m"
    assert lines[2].startswith("Busiest: <https://vk.com/wall-12345_678|post 678> (30), ")
    assert len(lines) <= 4 and len(text) < 1_000


def test_a_digest_id_depends_only_on_its_alerts() -> None:
    a, b = alert(comment_id="x"), alert(comment_id="y")
    assert Digest("vk", "12345", (a, b)).delivery_id == Digest("vk", "12345", (b, a)).delivery_id
    assert Digest("vk", "12345", (a,)).delivery_id != Digest("vk", "12345", (a, b)).delivery_id
    assert delivery_id(a) == "vk:12345:x:unanswered_comment"


def test_the_webhook_document_carries_every_alert_and_the_stable_id() -> None:
    sent_at = datetime(2026, 1, 1, 13, 5, tzinfo=UTC)
    document = webhook_payload(alert(), sent_at)
    assert document["type"] == "alert" and document["delivery_id"] == "vk:12345:m1:unanswered_comment"
    assert document["sent_at"] == "2026-01-01T13:05:00+00:00"
    (one,) = document["alerts"]
    assert one["kind"] == "unanswered_comment" and "record" not in one
    assert one["post_url"] == "https://vk.com/wall-12345_678"
    assert one["commented_at"] == "2026-01-01T12:00:00.000+00:00"
    assert document["text"] == render(alert(), PLAIN)
    digest = webhook_payload(Digest("vk", "12345", (alert(), alert(comment_id="m2"))), sent_at)
    assert digest["type"] == "digest" and len(digest["alerts"]) == 2


def test_a_spike_alert_gives_the_figures_that_raised_it() -> None:
    spike = alert(
        AlertKind.ENGAGEMENT_SPIKE, comment_id="", author_id="", snippet="", waited_s=7_200.0, sla_s=600.0,
        observed=412.0, expected=18.25,
    )  # fmt: skip
    first, last = render(spike, SLACK).split("\n")
    assert first == "📈 *Engagement spike: 412 in 10m, usually 18.2 at 2h 00m old* · VK 12345"
    assert last == "<https://vk.com/wall-12345_678|post 678> · first seen 01 Jan 12:00 UTC"


def test_a_quiet_source_alert_says_for_how_long_and_what_to_check() -> None:
    quiet = alert(
        AlertKind.SOURCE_QUIET, post_id="", comment_id="", author_id="", snippet="", waited_s=1_800.0,
        sla_s=1_800.0, observed=0.0, expected=240.0,
    )  # fmt: skip
    first, last = render(quiet, PLAIN).split("\n")
    assert first == "🔇 No events for 30m, usually 240 in 30m · VK 12345"
    assert last.startswith("last event before 01 Jan 12:00 UTC · check the platform token")
    back = render(alert(AlertKind.SOURCE_RECOVERED, post_id="", waited_s=2_700.0, observed=3.0), PLAIN)
    assert back.split("\n")[0] == "🔊 Events again after 45m quiet · VK 12345"


def test_a_digest_of_mixed_kinds_counts_each_and_names_no_empty_post() -> None:
    quiet = alert(AlertKind.SOURCE_QUIET, post_id="", comment_id="", waited_s=1_800.0, expected=240.0)
    digest = Digest(
        "vk", "12345", (alert(), quiet, alert(AlertKind.ENGAGEMENT_SPIKE, comment_id="", observed=9.0))
    )
    first, wait, busiest = render(digest, PLAIN).split("\n")[:3]
    assert first == "🚨 3 alerts · VK 12345: 1 unanswered, 1 spiking posts, 1 quiet"
    assert wait == "Longest wait 1h 05m, SLA 1h 00m"
    assert busiest == "Busiest: https://vk.com/wall-12345_678 (2)"
