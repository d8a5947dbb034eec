"""The exception tree of `agents`.

AgentError
 +-- KafkaUnavailable    the broker cannot be reached or did not acknowledge in time (`retryable`)
 +-- DeliveryFailed      one or more messages were not acknowledged; `failed` counts them, `first` is the first cause
"""

from __future__ import annotations


class AgentError(Exception):
    """Root of every error raised by the `agents` package."""

    retryable = False


class KafkaUnavailable(AgentError):
    retryable = True


class DeliveryFailed(AgentError):
    retryable = True

    def __init__(self, failed: int, first: BaseException | None) -> None:
        self.failed = failed
        self.first = first
        super().__init__(f"{failed} message(s) were not acknowledged by Kafka; first error: {first!r}")
