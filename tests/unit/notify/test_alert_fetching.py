"""The notifier's consumer takes the alerts topic in large fetches, without making a live alert wait."""

from __future__ import annotations

from pipeline.notify.notifier import alert_fetching


def test_a_fetch_waits_for_many_alerts_but_not_long() -> None:
    fetching = alert_fetching()
    assert fetching["fetch_min_bytes"] >= 256 * 1024
    assert fetching["fetch_max_wait_ms"] <= 500  # what a live alert may wait more, at most


def test_one_partition_can_fill_a_fetch_so_a_busy_topic_never_waits() -> None:
    fetching = alert_fetching()
    assert fetching["fetch_min_bytes"] <= fetching["max_partition_fetch_bytes"]
