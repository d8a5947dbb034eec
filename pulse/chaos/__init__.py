"""`pulse chaos`: faults struck at a running pipeline (`faults`) while its input goes in at a live pace
(`feed`), and the yardstick it is held to afterwards: what a replayed file must leave in ClickHouse,
worked out independently of the pipeline (`reference`), and a store held against it (`verdict`).

- `expected_from_file(path, ReferenceRules(...))` -> `Expected`: the `engagement_minute`, `comment_sla`
  and comment-alert rows the run must produce.
- `judge_store(expected, store_query(settings.clickhouse))` -> `StoreVerdict`: per table the rows
  matched, and the first few missing, extra and different ones.
"""

from pulse.chaos.comment_clocks import AlertRow, CommentKey, SlaRow
from pulse.chaos.faults import ChaosMonkey, ChaosSettings, Fault, Strike, plan
from pulse.chaos.feed import PacedLines
from pulse.chaos.intake import Accepted, Intake, partition_of, read_intake
from pulse.chaos.reference import (
    Expected,
    MinuteKey,
    MinuteRow,
    ReferenceRules,
    expected_from_file,
    expected_from_intake,
    expected_from_lines,
)
from pulse.chaos.verdict import Mismatch, Query, StoreVerdict, TableVerdict, compare, judge_store, store_query

__all__ = [
    "Accepted",
    "AlertRow",
    "ChaosMonkey",
    "ChaosSettings",
    "CommentKey",
    "Expected",
    "Fault",
    "Intake",
    "MinuteKey",
    "MinuteRow",
    "Mismatch",
    "PacedLines",
    "Query",
    "ReferenceRules",
    "SlaRow",
    "StoreVerdict",
    "Strike",
    "TableVerdict",
    "compare",
    "expected_from_file",
    "expected_from_intake",
    "expected_from_lines",
    "judge_store",
    "partition_of",
    "plan",
    "read_intake",
    "store_query",
]
