"""The chaos plan and the rule that says a consumer group is back at work after a fault."""

from __future__ import annotations

import random

from kafka import TopicPartition

from pulse.chaos import Fault, plan
from pulse.chaos.faults import _moved_on

A0, A1 = TopicPartition("a", 0), TopicPartition("a", 1)


def test_the_plan_strikes_each_fault_once_in_order_of_time_within_the_feed() -> None:
    faults = list(Fault)
    strikes = plan(faults, feed_s=100.0, rng=random.Random(3))
    assert sorted(s.fault for s in strikes) == sorted(faults)
    moments = [s.due_s for s in strikes]
    assert moments == sorted(moments)
    assert all(10.0 <= m <= 80.0 for m in moments)
    again = plan(faults, feed_s=100.0, rng=random.Random(3))
    assert [(s.fault, s.due_s) for s in again] == [(s.fault, s.due_s) for s in strikes]


def test_back_at_work_once_every_partition_with_messages_has_a_commit_past_the_strike() -> None:
    before = {A0: (10, 20), A1: (5, 5)}  # a0 had 10 pending; a1 nothing
    assert not _moved_on(before, {A0: (10, 25), A1: (5, 5)})  # nothing committed yet
    assert _moved_on(before, {A0: (11, 25), A1: (5, 5)})
    # a1 got messages after the strike: they must be committed too
    assert not _moved_on(before, {A0: (25, 25), A1: (5, 9)})
    assert _moved_on(before, {A0: (25, 25), A1: (6, 9)})


def test_no_commit_anywhere_is_not_back_at_work_even_with_nothing_pending() -> None:
    idle = {A0: (10, 10), A1: (-1, 0)}
    assert not _moved_on(idle, idle)


def test_a_group_that_never_committed_a_partition_must_commit_it() -> None:
    before = {A0: (-1, 4)}
    assert not _moved_on(before, {A0: (-1, 6)})
    assert _moved_on(before, {A0: (0, 6)})
