"""The delivery ledger finds its topic's partitions by describing that one topic (never by listing or
loading the metadata of every topic of the cluster)."""

from __future__ import annotations

from typing import Any

from pipeline.notify.ledger import wait_for_partitions

UNKNOWN_TOPIC = 3


class FakeAdmin:
    """Describes `topic` as missing for the first `missing_for` calls, then with `partitions`."""

    def __init__(self, topic: str, partitions: list[int], missing_for: int = 0) -> None:
        self.topic = topic
        self.partitions = partitions
        self.missing_for = missing_for
        self.described: list[list[str]] = []

    def describe_topics(self, topics: list[str]) -> list[dict[str, Any]]:
        self.described.append(list(topics))
        if len(self.described) <= self.missing_for:
            return [{"name": self.topic, "error_code": UNKNOWN_TOPIC, "partitions": []}]
        parts = [{"error_code": 0, "partition_index": p} for p in self.partitions]
        return [{"name": self.topic, "error_code": 0, "partitions": parts}]

    def list_topics(self) -> list[str]:
        raise AssertionError("lists every topic of the cluster")


def test_an_existing_topic_gives_its_partitions_in_order_from_one_description() -> None:
    admin = FakeAdmin("x-ledger", [2, 0, 1])
    assert wait_for_partitions(admin, "x-ledger") == [0, 1, 2]  # type: ignore[arg-type]
    assert admin.described == [["x-ledger"]]


def test_a_missing_topic_gives_none_at_once_without_a_wait() -> None:
    admin = FakeAdmin("x-ledger", [0], missing_for=100)
    assert wait_for_partitions(admin, "x-ledger") == []  # type: ignore[arg-type]
    assert len(admin.described) == 1


def test_a_topic_created_a_moment_ago_is_waited_for() -> None:
    admin = FakeAdmin("x-ledger", [0], missing_for=2)
    assert wait_for_partitions(admin, "x-ledger", wait_s=5) == [0]  # type: ignore[arg-type]
    assert len(admin.described) == 3
