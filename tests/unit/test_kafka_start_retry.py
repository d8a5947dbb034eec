"""A start-up tried again while the cluster answers with retriable errors (pipeline.kafka_clients)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from kafka.errors import (
    KafkaConnectionError,
    LeaderNotAvailableError,
    SaslAuthenticationFailedError,
    TopicAuthorizationFailedError,
)

from pipeline.errors import NotifierKafkaError
from pipeline.kafka_clients import is_retriable, until_available


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def failing(errors: list[BaseException], then: str = "started") -> tuple[list[int], Callable[[], str]]:
    calls: list[int] = []

    def attempt() -> str:
        calls.append(1)
        if len(calls) <= len(errors):
            raise errors[len(calls) - 1]
        return then

    return calls, attempt


def wrapped(cause: BaseException) -> NotifierKafkaError:
    try:
        raise NotifierKafkaError(f"cannot reach Kafka: {cause}") from cause
    except NotifierKafkaError as exc:
        return exc


def test_retriable_errors_are_tried_again_with_growing_pauses_until_the_start_succeeds() -> None:
    time = FakeTime()
    errors: list[BaseException] = [
        KafkaConnectionError("111 ECONNREFUSED"),
        wrapped(KafkaConnectionError("104 ECONNRESET")),  # our error raised from Kafka's, as the pieces do
        LeaderNotAvailableError(),
    ]
    calls, attempt = failing(errors)
    assert until_available(attempt, "starting", 30.0, clock=time.clock, sleep=time.sleep) == "started"
    assert len(calls) == 4
    assert time.slept == [0.5, 1.0, 2.0]


def test_an_error_that_is_not_retriable_fails_at_once() -> None:
    time = FakeTime()
    for error in (
        TopicAuthorizationFailedError(),
        SaslAuthenticationFailedError(),
        NotifierKafkaError("topic x does not exist"),
        ValueError("a bug"),
    ):
        calls, attempt = failing([error])
        with pytest.raises(type(error)):
            until_available(attempt, "starting", 30.0, clock=time.clock, sleep=time.sleep)
        assert len(calls) == 1
    assert time.slept == []


def test_a_retriable_error_fails_once_the_window_would_be_passed() -> None:
    time = FakeTime()
    calls, attempt = failing([KafkaConnectionError("refused")] * 100)
    with pytest.raises(KafkaConnectionError):
        until_available(attempt, "starting", 10.0, clock=time.clock, sleep=time.sleep)
    # 0.5 + 1 + 2 + 4 = 7.5 s; another 4 s would pass 10 s, so the fifth failure is the last.
    assert time.slept == [0.5, 1.0, 2.0, 4.0]
    assert len(calls) == 5
    assert time.now <= 10.0


def test_no_window_means_a_single_try() -> None:
    time = FakeTime()
    calls, attempt = failing([KafkaConnectionError("refused")])
    with pytest.raises(KafkaConnectionError):
        until_available(attempt, "starting", 0.0, clock=time.clock, sleep=time.sleep)
    assert len(calls) == 1


def test_retriable_means_the_error_or_what_it_was_raised_from() -> None:
    assert is_retriable(KafkaConnectionError())
    assert is_retriable(wrapped(LeaderNotAvailableError()))
    assert not is_retriable(wrapped(TopicAuthorizationFailedError()))
    assert not is_retriable(RuntimeError("x"))
