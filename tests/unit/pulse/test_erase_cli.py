"""`pulse erase` refuses a person it could not find as the events name them, before it sends anything."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from pulse.cli import main


@pytest.mark.parametrize(
    ("platform", "user_id", "says"),
    [("", "u1", "--platform"), ("\r", "u1", "--platform"), ("VK", "u1", "--platform"),
     ("vk", "", "--user-id"), ("vk", "u1\r", "--user-id"), ("vk", " u1", "--user-id"), ("vk", "x" * 257, "--user-id")],
)  # fmt: skip
def test_a_person_the_events_could_not_name_is_refused_at_once(
    platform: str, user_id: str, says: str
) -> None:
    # An unreachable broker: a refusal that came later than the options would fail differently.
    env = {"PULSE_KAFKA__BOOTSTRAP_SERVERS": "127.0.0.1:9", "PULSE_KAFKA__REQUEST_TIMEOUT_MS": "1000"}
    result = CliRunner(env=env).invoke(main, ["erase", "--platform", platform, "--user-id", user_id])
    assert result.exit_code == 2 and f"Invalid value for {says}" in result.output, result.output
