"""Repeated Kafka client errors (a broker down: one per reconnect attempt) are shown once per window, with
a count of those held back; everything else passes untouched."""

from __future__ import annotations

import logging

from pulse.logs import RepeatedClientErrors


def record(name: str, msg: str, level: int = logging.ERROR, *args: object) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def test_one_per_window_then_a_count_of_the_held_back() -> None:
    now = [0.0]
    kept = RepeatedClientErrors(window_s=10, clock=lambda: now[0])
    lost = "%s: Connection lost: %s"
    assert kept.filter(record("kafka.net.connection", lost, logging.ERROR, "node 1", "refused"))
    for _ in range(50):
        now[0] += 0.1
        assert not kept.filter(record("kafka.net.connection", lost, logging.ERROR, "node 2", "refused"))
    # another kind of client error shows at once
    assert kept.filter(record("kafka.coordinator", "Marking the coordinator dead (node %s)"))
    now[0] = 10.5
    again = record("kafka.net.connection", lost, logging.ERROR, "node 1", "refused")
    assert kept.filter(again)
    assert (
        again.getMessage()
        == "node 1: Connection lost: refused (50 more like this in the last 10 s not shown)"
    )


def test_our_own_records_and_client_info_pass_untouched() -> None:
    kept = RepeatedClientErrors(window_s=10, clock=lambda: 0.0)
    for _ in range(3):
        assert kept.filter(record("pipeline.warehouse.loader", "insert failed"))
        assert kept.filter(record("kafka.consumer", "joined", logging.INFO))
