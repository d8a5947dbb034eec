"""The exception tree of `pipeline`.

PipelineError
 +-- WarehouseError      ClickHouse refused or could not be reached; `code` is the server's error code,
 |   |                   `retryable` says whether the same request may succeed later
 |   +-- StoreLocked     the embedded store is open in another process
 |   +-- QueryRefused    an analyst's statement the read-only query path does not run (not one reading
 |                       statement, a table function, INTO OUTFILE), or a query request without the
 |                       query port's credential; `reason` says which
 +-- MigrationError      a DDL file could not be applied; `version` names it
 +-- UnknownQuery        no named analytics query has that name (the message lists those there are)
 +-- SinkStopped         asked to stop while ClickHouse was away: the pending batch was not committed
 +-- NotifyConfigError   the notifier's destinations file is unreadable or invalid; `path` names it
 +-- DestinationError    an ops-channel destination refused an alert or could not be reached;
                         `retryable`, `retry_after_s` (what the API asked for), `status` (HTTP)
 +-- NotifierKafkaError  the notifier could not reach Kafka, or create, read or write its delivery ledger
 +-- RecoveryStalled     a worker's table recovery received no changelog record for too long: it stops,
 |                       to be started again
 +-- DeliveryStalled     a worker's producer did not deliver what it held for too long: it stops, to be
                         started again
"""

from __future__ import annotations


class PipelineError(Exception):
    """Root of every error raised by the `pipeline` package."""


class WarehouseError(PipelineError):
    def __init__(self, message: str, *, code: int | None = None, retryable: bool = False) -> None:
        self.code = code
        self.retryable = retryable
        super().__init__(message)


class StoreLocked(WarehouseError):
    """chDB lets one process at a time open an on-disk store."""


class QueryRefused(WarehouseError):
    """Refused before ClickHouse ran anything: the reason is for the person who wrote the statement."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class MigrationError(PipelineError):
    def __init__(self, version: int, message: str) -> None:
        self.version = version
        super().__init__(f"migration {version:04d}: {message}")


class UnknownQuery(PipelineError):
    pass


class NotifyConfigError(PipelineError):
    def __init__(self, path: str, message: str) -> None:
        self.path = path
        super().__init__(f"{path}: {message}")


class DestinationError(PipelineError):
    """`retry_after_s` is the wait the API asked for (Slack's `Retry-After`, Telegram's `retry_after`)."""

    def __init__(
        self,
        destination: str,
        message: str,
        *,
        retryable: bool,
        status: int | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        self.destination = destination
        self.retryable = retryable
        self.status = status
        self.retry_after_s = retry_after_s
        super().__init__(f"{destination}: {message}")


class NotifierKafkaError(PipelineError):
    pass


class SinkStopped(PipelineError):
    """The sink was asked to stop while retrying a batch; its offsets were not committed, so it is read
    again on the next start."""


class RecoveryStalled(PipelineError):
    """A worker's table recovery has changelog records left to read and received none for too long."""


class DeliveryStalled(PipelineError):
    """A worker's producer, flushed before an offset commit, did not deliver what it held in time."""
