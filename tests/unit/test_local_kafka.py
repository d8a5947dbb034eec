"""The local broker's launcher, the parts that need no broker."""

from __future__ import annotations

import base64

from pulse.local_kafka import new_cluster_id


def test_new_cluster_ids_never_start_with_a_dash_and_are_kafka_uuids() -> None:
    ids = [new_cluster_id() for _ in range(2_000)]  # unchecked, about 31 of them would start with "-"
    assert not [i for i in ids if i.startswith("-")]
    assert all(len(base64.urlsafe_b64decode(i + "==")) == 16 for i in ids)
    assert len(set(ids)) == len(ids)
