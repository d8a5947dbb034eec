"""Creating and describing the pipeline's topics on any Kafka cluster (the local broker or a real one)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Literal

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError, LeaderNotAvailableError, NoError, TopicAlreadyExistsError, for_code
from pydantic import BaseModel, Field

from pipeline.kafka_clients import described_partitions, until_available
from pulse.errors import TopicError
from pulse.wait_pace import WaitPace
from schemas import KafkaSettings, Topics, durability_configs

# At most this many replicas of a partition where the cluster has the brokers (Kafka's usual production setting).
MAX_AUTO_REPLICAS = 3


class TopicSettings(BaseModel):
    """Partition counts bound how many workers can share the load: one partition feeds at most one worker."""

    prefix: str = Field(default="", pattern=r"^[A-Za-z0-9._-]{0,100}$")
    event_partitions: int = Field(default=4, ge=1, le=1024)
    alert_partitions: int = Field(default=1, ge=1, le=1024)
    dead_letter_partitions: int = Field(default=1, ge=1, le=1024)
    # "auto": min(3, the brokers the cluster reports), asked once per process (`resolved`).
    replication_factor: Annotated[int, Field(ge=1, le=16)] | Literal["auto"] = "auto"
    retention_bytes: int = Field(default=1 << 30, ge=1 << 20, description="per partition; -1: unbounded")
    retention_h: float = Field(
        default=168.0,
        gt=0,
        le=24 * 3_650,
        description="time retention, counted from each record's arrival, of the topics that hold personal "
        "data: the event topics, alerts, comment-sla and dead-letters",
    )

    @property
    def names(self) -> Topics:
        return Topics.prefixed(self.prefix)

    @property
    def replicas(self) -> int:
        """The replication factor of the topics we create, once `resolved`: reading it before is a bug of
        the entry point (an "auto" never reaches a topic)."""
        if self.replication_factor == "auto":
            raise TopicError("the replication factor is 'auto' and was not resolved against the cluster")
        return self.replication_factor

    def resolved(self, kafka: KafkaSettings) -> TopicSettings:
        """These settings with an "auto" replication factor made a number: min(3, the brokers the cluster
        at `kafka` reports, those down for the moment included). Each entry point calls this once, before
        it creates a topic; `pulse run` hands the number to its children, which do not ask again."""
        if self.replication_factor != "auto":
            return self
        return self.model_copy(update={"replication_factor": min(MAX_AUTO_REPLICAS, cluster_size(kafka))})

    def retention_ms(self, topics: Topics) -> dict[str, int]:
        """The topics kept for `retention_h` (from each record's arrival), by name: those that carry what
        people wrote or who they are (ids, texts, snippets). The others keep their size cap only."""
        personal = (*topics.event_topics, topics.alerts, topics.comment_sla, topics.dead_letters)
        return dict.fromkeys(personal, int(self.retention_h * 3_600_000))

    def partitions(self, topics: Topics) -> dict[str, int]:
        # Outputs and ticks follow the inputs' partitioning: partition p of each is written by whoever
        # processes partition p of the inputs, and faust needs the ticks co-partitioned with them.
        wanted = dict.fromkeys(
            (*topics.event_topics, *topics.output_topics, topics.ticks), self.event_partitions
        )
        wanted[topics.alerts] = self.alert_partitions
        wanted[topics.dead_letters] = self.dead_letter_partitions
        return wanted


@dataclass(frozen=True, slots=True)
class TopicInfo:
    name: str
    partitions: int
    messages: int  # the sum of the partitions' end offsets: messages ever written, not events
    replicas: int  # of its first partition


def cluster_size(kafka: KafkaSettings) -> int:
    """The brokers the cluster reports, fenced ones (down for the moment) included: in KRaft a broker
    stays registered when it stops, so this is the cluster's size, not how many brokers happen to be up.
    Tried again on retriable errors for `kafka.start_retry_s` (see pipeline.kafka_clients)."""
    return until_available(lambda: _cluster_size(kafka), "describing the cluster", kafka.start_retry_s)


def _cluster_size(kafka: KafkaSettings) -> int:
    admin = _admin(kafka)
    try:
        return len(admin.describe_cluster()["brokers"])
    except KafkaError as exc:
        raise TopicError(f"cannot describe the cluster at {kafka.bootstrap_servers}: {exc}") from exc
    finally:
        admin.close()


def ensure_topics(
    kafka: KafkaSettings,
    wanted: Mapping[str, int],
    replication_factor: int,
    retention_bytes: int = 1 << 30,
    retention_ms: Mapping[str, int] | None = None,
) -> list[str]:
    """Creates whichever of `wanted` (name -> partitions) are missing; returns the names created.

    Every topic is capped by size, and one of three or more replicas needs two of them in sync for a
    write (`schemas.durability_configs`). The topics in `retention_ms` (name -> milliseconds) are also kept for
    that long from each record's arrival: the broker stamps their records with the time it appended them
    (`LogAppendTime`), since our producers stamp event times and a time retention on those deleted a
    replay of last month's history as soon as it arrived. The others keep no time retention.

    An existing topic is left as it is: changing a topic's partition count moves keys between partitions
    and breaks per-post ordering, so that is an operator's decision, not a side effect of starting up.

    Tried again on retriable errors (a broker of the cluster down, the controller moving) for
    `kafka.start_retry_s`: see pipeline.kafka_clients.
    """
    return until_available(
        lambda: _create_missing(kafka, wanted, replication_factor, retention_bytes, retention_ms),
        "creating topics",
        kafka.start_retry_s,
    )


def _create_missing(
    kafka: KafkaSettings,
    wanted: Mapping[str, int],
    replication_factor: int,
    retention_bytes: int,
    retention_ms: Mapping[str, int] | None,
) -> list[str]:
    admin = _admin(kafka)
    try:
        existing = existing_topics(admin, wanted)
        timed = retention_ms or {}

        def config(name: str) -> dict[str, str]:
            if name not in timed:
                return {"retention.ms": "-1", "retention.bytes": str(retention_bytes), **durable}
            return {"retention.ms": str(timed[name]), "retention.bytes": str(retention_bytes),
                    "message.timestamp.type": "LogAppendTime", **durable}  # fmt: skip

        durable = durability_configs(replication_factor)

        missing = {
            name: {
                "num_partitions": partitions,
                "replication_factor": replication_factor,
                "configs": config(name),
            }
            for name, partitions in wanted.items()
            if name not in existing
        }
        if not missing:
            return []
        # One request for them all: one by one, `ensure_topics` of a `pulse run`'s 11 topics took 0.64-0.79 s
        # (0.5 s of it creating them), 0.32-0.41 s so.
        answer = admin.create_topics(missing, raise_errors=False)
        created, failed, errors = [], [], []
        for topic in answer["topics"]:
            error = for_code(topic["error_code"])
            if error is NoError:
                created.append(topic["name"])
            elif error is not TopicAlreadyExistsError:  # that one: another process created it meanwhile
                failed.append(f"{topic['name']}: {error.__name__} {topic.get('error_message') or ''}".strip())
                errors.append(error)
        if failed:
            # Raised from the first topic's error, so a retriable one (the controller moving) is tried again.
            raise TopicError(
                f"cannot create topics on {kafka.bootstrap_servers}: {'; '.join(failed)}"
            ) from errors[0]()
        return created
    except KafkaError as exc:
        raise TopicError(f"cannot create topics on {kafka.bootstrap_servers}: {exc}") from exc
    finally:
        admin.close()


def describe_topics(kafka: KafkaSettings) -> list[TopicInfo]:
    """Every non-internal topic with its partition count, sorted by name. Tried again on retriable errors
    for `kafka.start_retry_s` (see pipeline.kafka_clients): a broker that has just started leads some
    partitions only a moment later."""
    return until_available(lambda: _describe_topics(kafka), "describing topics", kafka.start_retry_s)


def _describe_topics(kafka: KafkaSettings) -> list[TopicInfo]:
    admin = _admin(kafka)
    try:
        names = [name for name in admin.list_topics() if not name.startswith("__")]
        described = admin.describe_topics(names) if names else []
        partitions = [
            TopicPartition(d["name"], p["partition_index"]) for d in described for p in d["partitions"]
        ]
        consumer = KafkaConsumer(**kafka.client_config())
        try:
            ends = consumer.end_offsets(partitions) if partitions else {}
        except KeyError as exc:
            # kafka-python 3.0.12 leaves a partition without a leader (yet) out of its answer, then looks it
            # up: seen as `pulse kafka up` failing with a traceback right after its broker started.
            raise LeaderNotAvailableError(f"no leader for {exc} yet") from exc
        finally:
            consumer.close()
        return sorted(
            (
                TopicInfo(
                    d["name"],
                    len(d["partitions"]),
                    sum(v for tp, v in ends.items() if tp.topic == d["name"]),
                    len(d["partitions"][0]["replica_nodes"]) if d["partitions"] else 0,
                )
                for d in described
            ),
            key=lambda t: t.name,
        )
    except KafkaError as exc:
        raise TopicError(f"cannot describe topics on {kafka.bootstrap_servers}: {exc}") from exc
    finally:
        admin.close()


def records_written(kafka: KafkaSettings, topics: Iterable[str]) -> dict[str, int]:
    """Records ever written to each of `topics` that exists (its partitions' end offsets, summed)."""
    partitions = topic_partitions(kafka, topics)
    consumer = KafkaConsumer(**kafka.client_config())
    try:
        ends = consumer.end_offsets(partitions) if partitions else {}
    except KafkaError as exc:
        raise TopicError(f"cannot read the end offsets on {kafka.bootstrap_servers}: {exc}") from exc
    finally:
        consumer.close()
    written: dict[str, int] = {}
    for tp, end in ends.items():
        written[tp.topic] = written.get(tp.topic, 0) + end
    return written


def delete_topics(kafka: KafkaSettings, names: Iterable[str]) -> None:
    """Deletes those of `names` that exist."""
    admin = _admin(kafka)
    try:
        doomed = sorted(existing_topics(admin, names))
        if doomed:
            admin.delete_topics(doomed)
    except KafkaError as exc:
        raise TopicError(f"cannot delete topics on {kafka.bootstrap_servers}: {exc}") from exc
    finally:
        admin.close()


@dataclass(frozen=True)
class TopicRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp: int  # ms, as the record carries it
    headers: dict[str, bytes]


def read_records(kafka: KafkaSettings, *topics: str) -> list[TopicRecord]:
    """Every record currently in `topics`, in topic-partition-offset order; stops at the end offsets."""
    partitions = topic_partitions(kafka, topics)
    consumer = KafkaConsumer(**kafka.client_config(), enable_auto_commit=False)
    try:
        consumer.assign(partitions)
        consumer.seek_to_beginning()
        end = consumer.end_offsets(partitions)
        records: list[TopicRecord] = []
        remaining = {tp for tp in partitions if end[tp] > 0}
        while remaining:
            for tp, batch in consumer.poll(timeout_ms=1000, max_records=50_000).items():
                records += [
                    TopicRecord(r.topic, r.partition, r.offset, r.key, r.value, r.timestamp, dict(r.headers))
                    for r in batch
                ]
                if consumer.position(tp) >= end[tp]:
                    remaining.discard(tp)
        return sorted(records, key=lambda r: (r.topic, r.partition, r.offset))
    except KafkaError as exc:
        raise TopicError(f"cannot read {', '.join(topics)} on {kafka.bootstrap_servers}: {exc}") from exc
    finally:
        consumer.close()


def check_partitions(kafka: KafkaSettings, names: list[str], expected: int) -> None:
    """Raises `TopicError` unless every named topic has `expected` partitions (co-partitioning). Asks
    about these topics only: a worker runs this at every start, and describing every topic of a cluster
    with its end offsets took 1.6 s of a restart on a broker holding a few hundred topics."""
    admin = _admin(kafka)
    try:
        found = {d["name"]: len(d["partitions"]) for d in admin.describe_topics(names) if d["partitions"]}
    except KafkaError as exc:
        raise TopicError(f"cannot describe topics on {kafka.bootstrap_servers}: {exc}") from exc
    finally:
        admin.close()
    wrong = {name: n for name, n in found.items() if n != expected}
    if wrong:
        listed = ", ".join(f"{name} has {n}" for name, n in sorted(wrong.items()))
        raise TopicError(
            f"the processors need {expected} partitions on each input topic ({listed}); set "
            f"PULSE_TOPICS__EVENT_PARTITIONS to match, or recreate the topics"
        )


# How often the waits below read the group again (`wait_committed` paces its reads: see WaitPace): a read
# over kept clients costs 1-2 ms of CPU.
WAIT_POLL_S = 0.1


class OffsetReader:
    """Consumer groups' committed offsets and lag, read over one admin client and one consumer kept open,
    for callers that read again and again (the waits below, the live view). Opening the two costs about
    13 ms of CPU and 120 ms, most of it loading metadata; a read over open ones about 1 ms and 2 ms. The
    partitions of a set of topics are looked up once, and again while one of the topics does not exist.

    A read that fails closes both clients, and the next read opens new ones. kafka-python 3.0's admin
    client caches a group's coordinator for as long as it lives, also when that broker is gone: on a
    3-broker cluster with the coordinator killed, `list_group_offsets` kept failing with ECONNREFUSED for
    minutes while another broker had long taken the group over (a `pulse run` waited out its 600 s for
    workers that had committed everything). New clients look the coordinator and the leaders up again."""

    def __init__(self, kafka: KafkaSettings) -> None:
        self.kafka = kafka
        self._admin: KafkaAdminClient | None = None
        self._consumer: KafkaConsumer | None = None
        self._partitions: dict[tuple[str, ...], list[TopicPartition]] = {}
        self._ended: set[str] = set()  # topics whose end offsets this consumer has read
        self._open()

    def __enter__(self) -> OffsetReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
            self._ended.clear()
        if self._admin is not None:
            self._admin.close()
            self._admin = None

    def lag(self, group: str, topics: list[str]) -> dict[str, int]:
        """Messages of each topic not yet committed by `group` (all of them if it never committed)."""
        try:
            positions = self.positions(group, topics)
        except TopicError as exc:
            raise TopicError(f"cannot read the lag of {group}: {exc}") from exc
        lag = dict.fromkeys(topics, 0)
        for tp, (committed, end) in positions.items():
            lag[tp.topic] += end - max(committed, 0)
        return lag

    def positions(self, group: str, topics: list[str]) -> dict[TopicPartition, tuple[int, int]]:
        """Per partition of `topics`: the group's committed offset (-1 if it never committed) and the
        partition's end offset."""
        admin, consumer = self._open()
        try:
            partitions = self._partitions_of(admin, topics)
            ends = self._end_offsets(consumer, partitions)
        # KeyError: kafka-python 3.0.12's end_offsets, asked while a broker of a cluster has just come back,
        # can drop a partition from its answer and then look it up.
        except (KafkaError, KeyError) as exc:
            self.close()
            raise TopicError(
                f"cannot read the end offsets of {topics} on {self.kafka.bootstrap_servers}: {exc}"
            ) from exc
        committed = self.committed(group, partitions)
        return {tp: (committed[tp], end) for tp, end in ends.items()}

    def committed(self, group: str, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        """The group's committed offset per partition (-1 where it never committed)."""
        admin, _ = self._open()
        try:
            committed = admin.list_group_offsets({group: partitions}).get(group, {})
        except KafkaError as exc:
            self.close()
            raise TopicError(
                f"cannot read the offsets of {group} on {self.kafka.bootstrap_servers}: {exc}"
            ) from exc
        return {
            tp: (meta.offset if meta is not None else -1) for tp in partitions for meta in [committed.get(tp)]
        }

    def _open(self) -> tuple[KafkaAdminClient, KafkaConsumer]:
        if self._admin is None:
            self._admin = _admin(self.kafka)
        if self._consumer is None:
            try:
                self._consumer = KafkaConsumer(**self.kafka.client_config())
            except (KafkaError, OSError) as exc:
                self.close()
                raise TopicError(f"cannot reach Kafka at {self.kafka.bootstrap_servers}: {exc}") from exc
        return self._admin, self._consumer

    def partitions(self, topics: list[str]) -> list[TopicPartition]:
        """Every partition of those of `topics` that exist, in topic then partition order."""
        admin, _ = self._open()
        try:
            return self._partitions_of(admin, topics)
        except KafkaError as exc:
            self.close()
            raise TopicError(f"cannot describe {topics} on {self.kafka.bootstrap_servers}: {exc}") from exc

    def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        _, consumer = self._open()
        try:
            return self._end_offsets(consumer, partitions)
        except (KafkaError, KeyError) as exc:  # KeyError: see `positions`
            self.close()
            raise TopicError(f"cannot read end offsets on {self.kafka.bootstrap_servers}: {exc}") from exc

    def _end_offsets(
        self, consumer: KafkaConsumer, partitions: list[TopicPartition]
    ) -> dict[TopicPartition, int]:
        """The end offsets of `partitions`: first those of the topics this consumer has not been asked about
        yet, in one call, then the rest. kafka-python 3.0.12's `end_offsets`, asked about partitions whose
        leaders it knows together with partitions of a topic it has not seen yet, leaves the latter out of
        its answer and then looks them up (KeyError); asked about unseen topics only, it loads their
        metadata and asks again. (A consumer's `topics()` would load every topic's metadata instead.)"""
        unseen = [tp for tp in partitions if tp.topic not in self._ended]
        ends = consumer.end_offsets(unseen) if unseen else {}
        self._ended.update(tp.topic for tp in unseen)
        rest = [tp for tp in partitions if tp not in ends]
        if rest:
            ends.update(consumer.end_offsets(rest))
        return ends

    def _partitions_of(self, admin: KafkaAdminClient, topics: list[str]) -> list[TopicPartition]:
        key = tuple(topics)
        found = self._partitions.get(key)
        if found is None:
            found = _partitions(admin, topics)
            if {tp.topic for tp in found} == set(topics):
                self._partitions[key] = found
        return found


def group_lag(kafka: KafkaSettings, group: str, topics: list[str]) -> dict[str, int]:
    """Messages of each topic not yet committed by a consumer group (all of them if it never committed)."""
    with OffsetReader(kafka) as reader:
        return reader.lag(group, topics)


def wait_committed(
    kafka: KafkaSettings,
    group: str,
    topics: list[str],
    timeout_s: float,
    who: str,
    check_alive: Callable[[], None] = lambda: None,
) -> None:
    """Until `group` has committed every message of `topics` (lag 0), calling `check_alive` (which raises
    when the consumer `who` has died) between reads of the lag. A broker still electing its group
    coordinator answers with errors for a moment: asked again, and the last one named on timeout."""
    deadline = time.monotonic() + timeout_s
    lag: dict[str, int] = {}
    error: TopicError | None = None
    reader: OffsetReader | None = None
    pace = WaitPace(idle_s=WAIT_POLL_S)
    read_at = 0.0
    try:
        while time.monotonic() < deadline:
            check_alive()
            if time.monotonic() >= read_at:
                try:
                    reader = reader or OffsetReader(kafka)
                    lag = reader.lag(group, topics)
                    left = sum(lag.values())
                    if left == 0:
                        return
                    read_at = time.monotonic() + pace.next_s(time.monotonic(), left)
                except TopicError as exc:
                    error = exc
                    read_at = time.monotonic() + WAIT_POLL_S
            # `check_alive` as often as before, whenever the lag is read next
            time.sleep(min(WAIT_POLL_S, max(0.0, read_at - time.monotonic())))
    finally:
        if reader is not None:
            reader.close()
    raise TopicError(
        f"{who} did not commit its input within {timeout_s:.0f} s (not yet committed: {lag}; "
        f"last error reading the lag: {error})"
    )


def group_members(kafka: KafkaSettings, group: str) -> tuple[str, list[int]]:
    """The group's state ("Stable", "PreparingRebalance", "Empty", ...) and how many partitions each of
    its members holds."""
    admin = _admin(kafka)
    try:
        described = admin.describe_groups([group]).get(group) or {}
    except KafkaError as exc:
        raise TopicError(f"cannot describe group {group} on {kafka.bootstrap_servers}: {exc}") from exc
    finally:
        admin.close()
    held = [
        sum(len(t["partitions"]) for t in (m.get("member_assignment") or {}).get("assigned_partitions", []))
        for m in described.get("members", [])
    ]
    return str(described.get("group_state", "unknown")), held


def wait_group_settled(
    kafka: KafkaSettings,
    group: str,
    members: int,
    partitions: int,
    timeout_s: float,
    who: str,
    check_alive: Callable[[], None] = lambda: None,
) -> tuple[str, list[int]]:
    """Until `group` is stable with `members` members, each holding some of the `partitions` partitions
    of its input (as many as there are, when members outnumber them): after it, no member still starting
    will join and move partitions (a rebalance stops the whole group for seconds). Returns what it saw
    then: the group's state and the partitions each member held (a group may start rebalancing again
    right after, as when a client's request times out and it rejoins)."""
    deadline = time.monotonic() + timeout_s
    seen: tuple[str, list[int]] = ("not described yet", [])
    while time.monotonic() < deadline:
        check_alive()
        try:
            seen = group_members(kafka, group)
            state, held = seen
            holding = sum(1 for count in held if count)
            if state == "Stable" and len(held) == members and holding >= min(members, partitions):
                return seen
        except TopicError as exc:
            seen = (str(exc), [])
        time.sleep(0.25)
    raise TopicError(
        f"{who} did not settle into {members} member(s) holding partitions within {timeout_s:.0f} s "
        f"(last seen: {seen[0]}, partitions per member {seen[1]})"
    )


def existing_topics(admin: KafkaAdminClient, names: Iterable[str]) -> set[str]:
    """Those of `names` that exist and this client may see (as a listing would show them), from a
    description of these topics only (`described_partitions`)."""
    return set(described_partitions(admin, names))


def topic_partitions(kafka: KafkaSettings, topics: Iterable[str]) -> list[TopicPartition]:
    """Every partition of those of `topics` that exist, in topic then partition order."""
    admin = _admin(kafka)
    try:
        return _partitions(admin, topics)
    except KafkaError as exc:
        raise TopicError(f"cannot describe topics on {kafka.bootstrap_servers}: {exc}") from exc
    finally:
        admin.close()


def _partitions(admin: KafkaAdminClient, topics: Iterable[str]) -> list[TopicPartition]:
    """Described, not read from a consumer: its `topics()`, and its `partitions_for_topic` of a topic it
    has not seen yet, load the metadata of every topic of the cluster (three times in each `pulse run`,
    in its two waits and its watcher)."""
    wanted = list(dict.fromkeys(topics))
    found = described_partitions(admin, wanted)
    return [TopicPartition(t, p) for t in wanted for p in found.get(t, ())]


def _admin(kafka: KafkaSettings) -> KafkaAdminClient:
    try:
        return KafkaAdminClient(**kafka.client_config())
    except (KafkaError, OSError) as exc:
        raise TopicError(f"cannot reach Kafka at {kafka.bootstrap_servers}: {exc}") from exc


def send_to_every_partition(kafka: KafkaSettings, topic: str, value: bytes) -> dict[int, int]:
    """Sends `value` to each partition of `topic`, each delivery awaited; partition -> its offset."""
    producer = KafkaProducer(**kafka.client_config(), acks="all")
    try:
        partitions = sorted(producer.partitions_for(topic) or ())
        if not partitions:
            raise TopicError(f"topic {topic!r} does not exist on {kafka.bootstrap_servers}")
        sent = {p: producer.send(topic, value=value, partition=p) for p in partitions}
        return {p: future.get(timeout=kafka.request_timeout_ms / 1000).offset for p, future in sent.items()}
    except KafkaError as exc:
        raise TopicError(f"cannot send to {topic} on {kafka.bootstrap_servers}: {exc}") from exc
    finally:
        producer.close()


def wait_committed_past(
    kafka: KafkaSettings, group: str, topic: str, offsets: Mapping[int, int], timeout_s: float
) -> set[int]:
    """Until `group` has committed past `offsets` (partition -> offset) of `topic`, or `timeout_s`; the
    partitions it has committed past."""
    wanted = [TopicPartition(topic, p) for p in offsets]
    deadline = time.monotonic() + timeout_s
    done: set[int] = set()
    with OffsetReader(kafka) as reader:
        while True:
            committed = reader.committed(group, wanted)
            done = {tp.partition for tp, offset in committed.items() if offset > offsets[tp.partition]}
            if len(done) == len(offsets) or time.monotonic() >= deadline:
                return done
            time.sleep(WAIT_POLL_S)
