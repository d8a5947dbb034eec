"""Every private (or unexported) member of faust-streaming and aiokafka that the corrections rely on, with
the signature they were written against, and the check that they are still there.

The corrections override or read these; a release may rename one or change its parameters without
notice, which would break the worker quietly (an override no longer called, an attribute read as
missing). `missing_or_changed()` names each one that no longer matches; a unit test runs it, so a version
bump of faust-streaming or aiokafka fails loudly before it ships.
"""

from __future__ import annotations

import importlib
import inspect
import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Member:
    """`owner` is "module:Class"; `params` a method's parameter names (self first), None for an attribute
    (a class attribute, an annotation, a property, or a `self.<name> =` in the class's own code)."""

    owner: str
    name: str
    params: tuple[str, ...] | None
    used_by: str

    def __str__(self) -> str:
        return f"{self.owner}.{self.name}"


_FAUST_CONSUMER = "faust.transport.drivers.aiokafka:Consumer"
_FAUST_THREAD = "faust.transport.drivers.aiokafka:AIOKafkaConsumerThread"

MEMBERS: tuple[Member, ...] = (
    # producer.IdempotentProducer
    Member("faust.transport.drivers.aiokafka:Producer", "_settings_extra", ("self",), "IdempotentProducer"),
    Member("faust.transport.drivers.aiokafka:Producer", "_ensure_producer", ("self",), "send_records"),
    Member("faust.transport.drivers.aiokafka:Producer", "flush", ("self",), "IdempotentProducer.flush"),
    Member("aiokafka.producer.producer:AIOKafkaProducer", "create_batch", ("self",), "send_records"),
    Member(
        "aiokafka.producer.producer:AIOKafkaProducer",
        "send_batch",
        ("self", "batch", "topic", "partition"),
        "send_records",
    ),
    # consumer.BriefFetchThread
    Member(_FAUST_THREAD, "_create_worker_consumer", ("self", "transport"), "BriefFetchThread"),
    Member("aiokafka.consumer.consumer:AIOKafkaConsumer", "_fetch_max_wait_ms", None, "BriefFetchThread"),
    # consumer.ProcessedAckConsumer: overrides
    Member(_FAUST_CONSUMER, "_new_offset", ("self", "tp"), "ProcessedAckConsumer"),
    Member(_FAUST_CONSUMER, "_add_gap", ("self", "tp", "offset_from", "offset_to"), "ProcessedAckConsumer"),
    Member(_FAUST_CONSUMER, "_new_consumer_thread", ("self",), "ProcessedAckConsumer"),
    Member(_FAUST_CONSUMER, "ack", ("self", "message"), "ProcessedAckConsumer"),
    Member(_FAUST_CONSUMER, "resume_partitions", ("self", "tps"), "ProcessedAckConsumer"),
    Member(_FAUST_CONSUMER, "perform_seek", ("self",), "ProcessedAckConsumer"),
    Member(_FAUST_CONSUMER, "on_partitions_revoked", ("self", "revoked"), "ProcessedAckConsumer"),
    Member(_FAUST_CONSUMER, "getmany", ("self", "timeout"), "ProcessedAckConsumer"),
    # consumer.ProcessedAckConsumer: what it calls and reads
    Member(_FAUST_CONSUMER, "_is_changelog_tp", ("self", "tp"), "ProcessedAckConsumer"),
    Member(
        _FAUST_CONSUMER,
        "_commit_offsets",
        ("self", "offsets", "start_new_transaction"),
        "ProcessedAckConsumer.perform_seek",
    ),
    Member(_FAUST_CONSUMER, "seek_wait", ("self", "partitions"), "ProcessedAckConsumer"),
    Member(_FAUST_CONSUMER, "earliest_offsets", ("self", "partitions"), "ProcessedAckConsumer"),
    Member(_FAUST_CONSUMER, "_read_offset", None, "ProcessedAckConsumer.getmany, the progress log"),
    Member(_FAUST_CONSUMER, "_committed_offset", None, "ProcessedAckConsumer.perform_seek, the progress log"),
    Member(_FAUST_CONSUMER, "_unacked_messages", None, "ProcessedAckConsumer.rewind_stalled"),
    Member(_FAUST_CONSUMER, "_active_partitions", None, "not_fetched, recovery_state"),
    Member(_FAUST_CONSUMER, "_paused_partitions", None, "not_fetched, recovery_state"),
    Member(_FAUST_CONSUMER, "_buffered_partitions", None, "not_fetched"),
    Member(_FAUST_CONSUMER, "_thread", None, "ProcessedAckConsumer._fetch_position"),
    Member(_FAUST_THREAD, "_ensure_consumer", ("self",), "ProcessedAckConsumer._fetch_position"),
    Member("aiokafka.consumer.consumer:AIOKafkaConsumer", "_subscription", None, "_fetch_position"),
    Member("aiokafka.consumer.subscription_state:SubscriptionState", "subscription", None, "_fetch_position"),
    Member("aiokafka.consumer.subscription_state:Subscription", "assignment", None, "_fetch_position"),
    Member(
        "aiokafka.consumer.subscription_state:Assignment", "state_value", ("self", "tp"), "_fetch_position"
    ),
    Member("aiokafka.consumer.subscription_state:TopicPartitionState", "position", None, "_fetch_position"),
    Member(
        "aiokafka.consumer.subscription_state:TopicPartitionState",
        "has_valid_position",
        None,
        "_fetch_position",
    ),
    Member("faust.transport.consumer:Consumer", "_drain_messages", None, "why admit/_add_gap exist"),
    # app.PulseApp
    Member("faust.app.base:App", "_on_agent_error", ("self", "agent", "exc"), "PulseApp"),
    Member("faust.app.base:App", "_create_directories", ("self",), "PulseApp"),
    Member("faust.app.base:App", "_new_producer", ("self",), "PulseApp"),
    Member("faust.app.base:App", "_new_consumer", ("self",), "PulseApp"),
    Member("faust.app.base:App", "_on_partitions_revoked", None, "PulseApp._new_consumer"),
    Member("faust.app.base:App", "_on_partitions_assigned", None, "PulseApp._new_consumer"),
    # worker.PulseWorker
    Member("faust.worker:Worker", "spinner", None, "PulseWorker"),
    Member("faust.worker:Worker", "on_first_start", ("self",), "PulseWorker"),
    Member("faust.tables.recovery:Recovery", "active_stats", ("self",), "PulseWorker._recovery_stall"),
    Member("faust.tables.recovery:Recovery", "in_recovery", None, "PulseWorker._recovery_stall"),
    Member("faust.tables.recovery:Recovery", "_recovery_started_at", None, "PulseWorker._recovery_stall"),
    Member(
        "faust.tables.recovery:Recovery", "_active_events_received_at", None, "PulseWorker._recovery_stall"
    ),
    # state_table.StateTable, BulkRestoreStore
    Member("faust.tables.base:Collection", "_new_store", ("self",), "StateTable"),
    Member("faust.stores.memory:Store", "__post_init__", ("self",), "BulkRestoreStore"),
    Member(
        "faust.stores.base:Store",
        "on_rebalance",
        ("self", "assigned", "revoked", "newly_assigned", "generation_id"),
        "BulkRestoreStore",
    ),
    Member("faust.tables.recovery:Recovery", "_build_offsets", None, "why persisted_offset is answered"),
    Member("faust.tables.manager:TableManager", "on_start", ("self",), "QuickTableManager"),
    Member("faust.tables.manager:TableManager", "_update_channels", ("self",), "QuickTableManager"),
    # the agent and its timers (stream/app.py)
    Member("faust.types.tuples:Message", "tracked", None, "ProcessedAckConsumer.ack"),
)


def missing_or_changed(members: tuple[Member, ...] = MEMBERS) -> list[str]:
    """One line per member that is gone or whose parameters differ; empty when all match."""
    problems: list[str] = []
    for member in members:
        module_name, class_name = member.owner.split(":")
        try:
            owner = getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError) as exc:
            problems.append(f"{member} (used by {member.used_by}): its class is gone ({exc})")
            continue
        problem = _check(owner, member)
        if problem:
            problems.append(f"{member} (used by {member.used_by}): {problem}")
    return problems


def _check(owner: type, member: Member) -> str | None:
    if member.params is None:
        return None if _has_attribute(owner, member.name) else "no such attribute"
    found = getattr(owner, member.name, None)
    if found is None or not callable(found):
        return "no such method"
    params = tuple(inspect.signature(found).parameters)
    if params != member.params:
        return f"parameters are now {params}, the corrections expect {member.params}"
    return None


def _has_attribute(owner: type, name: str) -> bool:
    for cls in owner.__mro__:
        if name in vars(cls) or name in getattr(cls, "__annotations__", {}):
            return True
        try:
            source = inspect.getsource(cls)
        except (OSError, TypeError):  # a built-in or C class: only what it declares counts
            continue
        if re.search(rf"\bself\.{re.escape(name)}\s*(?::[^=\n]+)?=", source):
            return True
    return False
