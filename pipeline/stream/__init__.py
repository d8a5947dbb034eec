"""The stream worker: per-post engagement per minute, rolling totals, and the comment SLA clocks with
their alerts, as faust agents over plain logic.

- `engagement`, `sla`, `partition`: the plain logic (no faust, no I/O), one input partition at a time.
- `state_format`: the saved state's keys and values, which every deploy must still be able to read.
- `settings`: the worker's typed settings. `app`: the faust app, its one thin agent and its timers.
- `faust_fixes/`: where faust-streaming's own behaviour is corrected (consumer, producer, worker).

Importing this package loads neither faust nor ClickHouse's clients; `app` loads faust.
"""
