"""Quiet sources, as plain logic: what the watch decides from the per-community figures ClickHouse gives."""

from __future__ import annotations

from pipeline.warehouse.source_watch import Episode, SourceRow, SourceWatchSettings, judge
from schemas.outputs import AlertKind

NOW_S = 1_796_000_400  # a minute boundary
SPAN = 1_800
SETTINGS = SourceWatchSettings(span_s=SPAN)


def row(recent: int, *, same_time_earlier: int = 0, days: int = 0, before: int = 0, age_s: int = 8 * 86_400,
        last_s: int = NOW_S - 3_600, community: str = "c1") -> SourceRow:  # fmt: skip
    return SourceRow("vk", community, last_s, NOW_S - age_s, recent, before, same_time_earlier, days)


def test_usual_is_the_same_time_of_day_on_earlier_days_or_the_hours_before() -> None:
    assert row(0, same_time_earlier=900, days=3).usual(SPAN, NOW_S) == 300
    assert row(0, before=600, age_s=4 * 3_600).usual(SPAN, NOW_S) == 100, "3 h before the span, scaled"
    assert row(0, before=100, age_s=SPAN + 900).usual(SPAN, NOW_S) is None, "a quarter hour is too little"
    assert row(0, before=100, age_s=SPAN + 1_800).usual(SPAN, NOW_S) == 100, "what it has, scaled"


def test_a_community_whose_events_stop_is_quiet_once_then_recovers_once() -> None:
    episodes: dict[tuple[str, str], Episode] = {}
    now_ms = NOW_S * 1000
    (quiet,) = judge([row(0, same_time_earlier=700, days=7)], episodes, SETTINGS, now_ms)
    assert quiet.kind is AlertKind.SOURCE_QUIET and quiet.alert_id == f"vk:c1:source_quiet:{now_ms}"
    assert (quiet.observed, quiet.expected, quiet.sla_s) == (0.0, 100.0, 1_800.0)
    assert quiet.waited_s == 3_600 and quiet.commented_at_ms == (NOW_S - 3_600) * 1000, "since its last event"
    assert judge([row(0, same_time_earlier=700, days=7)], episodes, SETTINGS, now_ms + 60_000) == []
    assert judge([row(5, same_time_earlier=700, days=7)], episodes, SETTINGS, now_ms + 120_000) == [], (
        "5 of a usual 100 is still quiet"
    )
    back = row(30, same_time_earlier=700, days=7, last_s=NOW_S + 600)
    (recovered,) = judge([back], episodes, SETTINGS, now_ms + 660_000)
    assert recovered.kind is AlertKind.SOURCE_RECOVERED and recovered.waited_s == 4_200
    assert judge([back], episodes, SETTINGS, now_ms + 720_000) == []


def test_a_trickle_far_below_usual_is_quiet_and_says_so() -> None:
    (alert,) = judge([row(4, same_time_earlier=300, days=1, last_s=NOW_S - 60)], {}, SETTINGS, NOW_S * 1000)
    assert alert.kind is AlertKind.SOURCE_QUIET and alert.observed == 4 and alert.waited_s == SPAN


def test_small_or_unknown_communities_and_normal_traffic_are_not_judged_quiet() -> None:
    rows = [
        row(0, same_time_earlier=19, days=1, community="small"),  # usually 19 < 20
        row(0, before=100, age_s=SPAN + 600, community="new"),  # too little history
        row(40, same_time_earlier=300, days=3, community="busy"),  # 40 of a usual 100
        row(11, same_time_earlier=100, days=1, community="slow"),  # 11 of 100: above the tenth
    ]
    assert judge(rows, {}, SETTINGS, NOW_S * 1000) == []


def test_an_episode_read_back_from_the_table_is_not_alerted_again() -> None:
    episodes = {("vk", "c1"): Episode(AlertKind.SOURCE_QUIET, (NOW_S - 3_600) * 1000)}
    assert judge([row(0, same_time_earlier=700, days=7)], episodes, SETTINGS, NOW_S * 1000) == []
