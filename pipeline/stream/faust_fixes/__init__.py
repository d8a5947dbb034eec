"""Where faust-streaming's own behaviour is corrected for the stream worker, fenced off from the logic.

Every class here overrides members of faust-streaming (and, through it, aiokafka), many of them private.
They were written and tested against the exact versions `pyproject.toml` pins; `relied_upon` lists every
private member they use with the signature they expect, and a unit test fails, naming the member, when an
upgrade renames or changes one. Each override's docstring says which faust behaviour it corrects and
where in faust's code that behaviour lives.

- `consumer`: process every input message in order, never commit past one not processed (`InputCursors`),
  fetch with a short wait, seek correctly at the end of a recovery.
- `producer`: acks=all with idempotence; many state records in one send.
- `app`: the factory hooks for the two above; an agent's error stops the worker instead of skipping on.
- `state_table`: the state table's changelog partitions restored in bulk by a plain consumer, not record by
  record through faust's recovery; a table manager that starts without faust's one-second sleep.
- `worker`: no terminal spinner (it turned every debug call into a log record); a watch on table recovery.
- `input_cursors`, `recovery_watch`: the plain logic behind the consumer's and the worker's checks.
"""

from pipeline.stream.faust_fixes.app import PulseApp
from pipeline.stream.faust_fixes.consumer import (
    FETCH_MAX_WAIT_MS,
    ProcessedAckConsumer,
    consumer_of,
    not_fetched,
    or_dash,
)
from pipeline.stream.faust_fixes.producer import IdempotentProducer
from pipeline.stream.faust_fixes.state_table import QuickTableManager, StateTable
from pipeline.stream.faust_fixes.worker import PulseWorker, run_worker

__all__ = [
    "FETCH_MAX_WAIT_MS",
    "IdempotentProducer",
    "ProcessedAckConsumer",
    "PulseApp",
    "PulseWorker",
    "QuickTableManager",
    "StateTable",
    "consumer_of",
    "not_fetched",
    "or_dash",
    "run_worker",
]
