"""What the kafka-python clients of the warehouse loader, the notifier and the `pulse` commands share:
describing just the topics they ask about, subscribing once their topics are known, and repairing a group
join that kafka-python strands.

## Waiting for a topic's partitions to appear in a client's metadata
A topic created a moment ago may not be in a client's metadata yet. A group leader that assigns before it
is assigns nothing for that topic, and notices only at the next metadata refresh (five minutes by
default): seen as a loader that sat for minutes with nothing to read. So a long-lived consumer subscribes
only once its topics' partitions are known.

## A kafka-python consumer's place in its group, and the repair for a join kafka-python strands
kafka-python 3.0.12 (re)joins a group when a flag asks for it or when the topic metadata it assigned from
no longer matches the latest. If a metadata response differs for a moment (seen under load, a few
seconds after the topics were created), `poll()` starts a join; if the next response matches again
before that join's answer was taken (a poll gives up after its timeout and leaves the join in flight),
no later poll awaits the join. The member then stays "rebalancing" for good:
- it sends no heartbeats, so the broker drops it after the session timeout;
- every commit is refused client-side with RebalanceInProgressError;
- fetching goes on from the old assignment, so nothing looks wrong but the committed offsets.

Seen: a loader that stored every row and committed none for four minutes, then failed to leave a group
that no longer knew it (UnknownMemberId). Asking for a rejoin makes the next poll take the join's answer,
or join again; see `rejoin_if_stranded`.

A second fault of the same code is left alone: a join that finishes between two polls (its answer arrives
on kafka-python's own thread) is thrown away by the next poll, which sends a new JoinGroup. For a group of
one (the loader as `pulse run` starts it) that costs one more join; in a group of several members polled
from one thread it was seen to rebalance without end.

## Starting while a broker of the cluster is down
A client's first requests go to whichever broker it picks; one that died a moment ago answers with a
connection error (kafka-python 3.0.12 raises it rather than asking another broker), and a topic whose
leader it was has no leader for a few seconds. Both are retriable in Kafka's own terms. A process that
gave up on them at start-up exited while two brokers of three could serve it: seen as a notifier started
by `pulse run` as the leader of a 3-broker cluster was killed, restarted three times within 7 s and ended
the run. So a start-up is tried again on retriable errors for `PULSE_KAFKA__START_RETRY_S` (see
`until_available`); a cluster that cannot be reached at all still fails on kafka-python's own bootstrap
timeout, and errors that are not retriable (a refused topic, bad credentials) fail at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import TypeVar

from kafka import KafkaAdminClient, KafkaConsumer
from kafka.coordinator.base import MemberState
from kafka.errors import NoError, RetriableError

log = logging.getLogger(__name__)

T = TypeVar("T")
RETRY_DELAYS_S = (0.5, 1.0, 2.0, 4.0)  # between attempts at a start-up; the last repeats


def is_retriable(exc: BaseException) -> bool:
    """True if Kafka calls `exc`, or the Kafka error it was raised from, retriable: a broker unreachable or
    restarting, a leader or controller moving, a topic not yet known."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, RetriableError):
            return True
        seen = seen.__cause__
    return False


def until_available(
    attempt: Callable[[], T],
    what: str,
    within_s: float,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """`attempt()`'s result, trying it again after a retriable error (see `is_retriable`) for as long as
    `within_s` seconds have not passed since the first try; any other error, and a retriable one after
    that, is raised as it came. `attempt` cleans up after itself when it fails. Each retry is logged with
    the error, naming `what` is being started."""
    started = clock()
    delays = iter(RETRY_DELAYS_S)
    delay = 0.0
    while True:
        try:
            return attempt()
        except Exception as exc:
            delay = next(delays, delay)
            if not is_retriable(exc) or clock() + delay - started > within_s:
                raise
            log.warning("%s: %s; trying again in %.1f s", what, exc, delay)
            sleep(delay)


def described_partitions(admin: KafkaAdminClient, topics: Iterable[str]) -> dict[str, list[int]]:
    """The partitions, in order, of each of `topics` that exists and this client may describe (a topic it
    may not describe is left out, as a listing would leave it out). Asks about these topics only: listing
    every topic of a shared cluster, or loading a consumer's metadata of them all, cost 0.13-0.3 s of CPU
    a call on the test broker (3,000-3,700 topics); describing a run's topics takes milliseconds."""
    wanted = list(dict.fromkeys(topics))
    if not wanted:
        return {}
    return {
        d["name"]: sorted(p["partition_index"] for p in d["partitions"])
        for d in admin.describe_topics(wanted)
        if d["error_code"] == NoError.errno
    }


def known_partitions(consumer: KafkaConsumer, topic: str, timeout_s: float) -> set[int]:
    """The topic's partitions once the client's metadata has them; empty if it still has none after
    `timeout_s` (the topic does not exist, or has no partitions)."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = consumer.partitions_for_topic(topic)
        if found:
            return set(found)
        if time.monotonic() > deadline:
            return set()
        consumer.topics()  # refreshes the metadata
        time.sleep(0.1)


def rejoin_if_stranded(consumer: KafkaConsumer) -> bool:
    """Asks for a rejoin if the consumer is rebalancing while no poll would finish the rebalance; True if
    it did. Cheap enough to call after every poll, from the thread that polls."""
    coordinator = getattr(consumer, "_coordinator", None)
    if coordinator is None or getattr(coordinator, "state", None) is not MemberState.REBALANCING:
        return False
    if coordinator.need_rejoin():  # a join in flight that the next poll awaits: the normal case
        return False
    coordinator.request_rejoin()
    log.warning(
        "the consumer was left rebalancing with no join to finish (a kafka-python fault): rejoining",
        extra={"group": coordinator.group_id},
    )
    return True
