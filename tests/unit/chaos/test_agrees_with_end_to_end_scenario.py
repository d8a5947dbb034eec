"""The reference gives the answers the end-to-end test of `pulse run` works out for its own scenario."""

from __future__ import annotations

from pulse.chaos import ReferenceRules, expected_from_lines
from tests.integration.pulse.test_run_end_to_end import build, expected_minutes


def test_the_reference_agrees_with_the_end_to_end_scenario() -> None:
    scenario = build()
    # The options that test runs with: --comment-sla 30m --lateness 10m --partitions 2.
    expected = expected_from_lines(
        scenario.lines, ReferenceRules(sla_s=1_800, allowed_lateness_s=600, partitions=2)
    )
    minutes = {(k[1], k[2], k[3] // 1000): (r.likes, r.unlikes, r.comments, r.reposts)
               for k, r in expected.engagement.items()}  # fmt: skip
    assert minutes == expected_minutes(scenario.events)
    sla = {k[2]: (r.answered_at_ms, r.response_seconds, int(r.breached), int(r.cancelled))
           for k, r in expected.sla.items()}  # fmt: skip
    assert sla == scenario.sla
    assert {a for a, row in expected.alerts.items() if row.kind != "at_risk"} == scenario.alerts
    assert len(expected.rejected_lines) == 3
    assert expected.late_events == 0
