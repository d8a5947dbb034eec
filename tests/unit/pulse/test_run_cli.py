"""`pulse run`'s options that are refused before anything starts."""

from __future__ import annotations

from click.testing import CliRunner

from pulse.cli import main


def test_post_old_alerts_is_for_backfills_only() -> None:
    result = CliRunner().invoke(main, ["run", "--post-old-alerts", "--duration", "1s"])
    assert result.exit_code == 2
    assert "--post-old-alerts is for --exit-when-done runs" in result.output
    assert "PULSE_NOTIFY__MAX_ALERT_AGE_S" in result.output
