"""`check_partitions`, which every worker runs at start, against the real broker: it asks about the named
topics only, and names the one that breaks co-partitioning."""

from __future__ import annotations

import pytest

from pulse.errors import TopicError
from pulse.topics import check_partitions, ensure_topics
from schemas import KafkaSettings


def test_co_partitioned_topics_pass_and_a_mismatch_names_the_topic(kafka: KafkaSettings, unique: str) -> None:
    likes, comments = f"cp{unique}-likes", f"cp{unique}-comments"
    ensure_topics(kafka, {likes: 4, comments: 2}, 1)
    check_partitions(kafka, [likes], 4)
    with pytest.raises(TopicError, match=rf"{comments} has 2"):
        check_partitions(kafka, [likes, comments], 4)
