"""What of a ClickHouse DSN may be shown to people."""

from __future__ import annotations

import pytest

from pipeline.warehouse.client import redacted_dsn


@pytest.mark.parametrize(
    ("dsn", "shown"),
    [
        ("chdb:///var/lib/pulse/store", "chdb:///var/lib/pulse/store"),
        ("http://pulse_writer:s3cret@ch:8123/pulse", "http://pulse_writer:***@ch:8123/pulse"),
        (
            "https://ch.example:8443/pulse?user=a&password=s3cret&x=1",
            "https://ch.example:8443/pulse?user=a&password=***&x=1",
        ),
        ("http://:s3cret@ch:8123", "http://:***@ch:8123"),
        ("http://pulse_reader@ch:8123", "http://pulse_reader@ch:8123"),
    ],
)
def test_a_password_never_shows(dsn: str, shown: str) -> None:
    assert redacted_dsn(dsn) == shown
    assert "s3cret" not in redacted_dsn(dsn)
