"""The faults `pulse chaos` strikes a running pipeline with, one after another, and how long the pipeline
takes to get back to work after each.

A fault strikes at a random moment of the input (the plan's `due_s`, from the start of the input), but
never before the previous one has been recovered from: a recovery time then belongs to one fault. Every
kill is a SIGKILL (no flush, no commit, no goodbye to the group), the way a crash or the OOM killer ends a
process. Recovery is measured from the strike until the piece's consumer group has moved on in every
partition where it had work pending at the strike (its committed offset past the one it had, or nothing
left to read): that includes the restart's delay, the process's start, its rejoining the group and, for a
worker, restoring its state; not the backlog left to catch up afterwards.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from kafka import KafkaAdminClient, TopicPartition
from kafka.errors import KafkaError

from pipeline.warehouse.routes import sink_routes
from pulse.errors import TopicError
from pulse.local.child_process import PulseChild
from pulse.local.local_kafka import LocalKafka
from pulse.local.local_pipeline import LocalPipeline
from pulse.topics import WAIT_POLL_S, OffsetReader


class Fault(StrEnum):
    WORKER = "worker"  # kill -9 of a stream worker
    LOADER = "loader"  # kill -9 of the ClickHouse loader
    NOTIFIER = "notifier"  # kill -9 of the alert notifier
    BROKER = "broker"  # kill -9 of one broker of a local cluster; started again `broker_down_s` later
    STORE = "store"  # the store's writer frozen (SIGSTOP) for `stall_s`, then let go (SIGCONT)


@dataclass
class Strike:
    """One fault of the plan and what came of it; times in seconds from the start of the input."""

    fault: Fault
    due_s: float
    at_s: float | None = None  # when it struck
    target: str = ""  # what it struck, e.g. "worker-1 (pid 4242)"
    recovered_s: float | None = None  # from the strike (a stall: from its end) until back at work
    in_sync_s: float | None = None  # a broker: from its restart until every replica is in sync again
    problem: str = ""  # why it did not strike or did not recover

    @property
    def done(self) -> bool:
        return self.recovered_s is not None


@dataclass(frozen=True, slots=True)
class ChaosSettings:
    recovery_timeout_s: float = 120.0  # a fault not recovered from by then fails the run's verdict
    broker_down_s: float = 10.0  # how long a killed broker stays down
    stall_s: float = 5.0  # how long the store's writer stays frozen


def plan(faults: list[Fault], feed_s: float, rng: random.Random) -> list[Strike]:
    """The faults in a random order, at random moments between 10% and 80% of the input's feed time."""
    order = list(faults)
    rng.shuffle(order)
    moments = sorted(rng.uniform(0.1, 0.8) * feed_s for _ in order)
    return [Strike(fault, due) for fault, due in zip(order, moments, strict=True)]


class ChaosMonkey(threading.Thread):
    """Strikes the planned faults at the pipeline, one at a time, each after the one before has been
    recovered from; `finished` is set once every strike is done or has failed. `pipeline.check()` (the
    main thread's job) is what starts a killed piece again; this thread only strikes and watches."""

    def __init__(
        self,
        pipeline: LocalPipeline,
        strikes: list[Strike],
        settings: ChaosSettings,
        *,
        cluster: LocalKafka | None,
        started: float,
        rng: random.Random,
        say: Callable[[str], None],
    ) -> None:
        super().__init__(name="chaos-monkey", daemon=True)
        self.pipeline = pipeline
        self.strikes = strikes
        self.settings = settings
        self.cluster = cluster
        self.started = started
        self.rng = rng
        self.say = say
        self.finished = threading.Event()
        self._halt = threading.Event()

    def stop(self) -> None:
        self._halt.set()

    def now_s(self) -> float:
        return time.monotonic() - self.started

    def run(self) -> None:
        try:
            with OffsetReader(self.pipeline.kafka) as reader:
                for strike in self.strikes:
                    if self._halt.wait(max(0.0, strike.due_s - self.now_s())):
                        strike.problem = "not struck: the run ended first"
                        continue
                    try:
                        self._strike(strike, reader)
                    except Exception as exc:  # noqa: BLE001 - the strike fails, not the thread: the verdict names it
                        strike.problem = f"the strike failed: {exc!r}"
                        self.say(f"{strike.fault}: {strike.problem}")
        finally:
            self.finished.set()

    def _strike(self, strike: Strike, reader: OffsetReader) -> None:
        group, topics = self._watched(strike.fault)
        before = self._positions(reader, group, topics)
        strike.at_s = self.now_s()
        try:
            if strike.fault is Fault.BROKER:
                self._kill_broker(strike)
            elif strike.fault is Fault.STORE:
                self._stall(strike)
            else:
                self._kill(strike, self._piece(strike.fault))
        except (OSError, TopicError, KafkaError) as exc:
            strike.problem = f"could not strike: {exc}"
            self.say(f"{strike.fault}: {strike.problem}")
            return
        self.say(f"{strike.at_s:6.1f} s  {strike.fault}: struck {strike.target}")
        since = strike.at_s if strike.fault is not Fault.STORE else self.now_s()
        deadline = time.monotonic() + self.settings.recovery_timeout_s
        while not self._halt.is_set() and time.monotonic() < deadline:
            now = self._positions(reader, group, topics)
            if now is not None and before is not None and _moved_on(before, now):
                strike.recovered_s = self.now_s() - since
                self.say(
                    f"{self.now_s():6.1f} s  {strike.fault}: back at work after {strike.recovered_s:.1f} s"
                )
                break
            if before is None:
                before = now
            time.sleep(WAIT_POLL_S)
        else:
            waiting = _waiting(before or {}, now or {})
            strike.problem = (
                f"not back at work within {self.settings.recovery_timeout_s:.0f} s"
                f" (no commit past the strike in {waiting})"
            )
            self.say(f"{strike.fault}: {strike.problem}")
        if strike.fault is Fault.BROKER and strike.recovered_s is not None:
            self._restart_broker(strike)

    def _watched(self, fault: Fault) -> tuple[str, list[str]]:
        """The consumer group whose progress says the pipeline is back at work after `fault`."""
        p = self.pipeline
        if fault in (Fault.LOADER, Fault.STORE):
            return p.sink_group, [t for _, topics in sink_routes(p.topics) for t in topics]
        if fault is Fault.NOTIFIER:
            return p.settings.notify.group, [p.topics.alerts]
        return p.app_id, list(p.topics.processor_inputs)  # a worker, or a broker: the stream workers

    def _positions(
        self, reader: OffsetReader, group: str, topics: list[str]
    ) -> dict[TopicPartition, tuple[int, int]] | None:
        try:
            return reader.positions(group, topics)
        except TopicError:
            return None  # a broker gone a moment ago: asked again on the next round

    def _piece(self, fault: Fault) -> PulseChild:
        p = self.pipeline
        if fault is Fault.WORKER:
            return self.rng.choice(p.workers)
        piece = p.loader if fault is Fault.LOADER else p.notifier
        if piece is None:
            raise OSError(f"this run has no {fault}")
        return piece

    def _kill(self, strike: Strike, piece: PulseChild) -> None:
        process = piece.process
        if process is None or process.poll() is not None:
            raise OSError(f"{piece.name} is not running")
        os.kill(process.pid, signal.SIGKILL)
        strike.target = f"{_short(piece)} (pid {process.pid})"

    def _stall(self, strike: Strike) -> None:
        """Freezes the loader, the process that holds the embedded store and writes to any store: its
        inserts, commits and heartbeats stop mid-flight, as they do when the store hangs."""
        loader = self.pipeline.loader
        process = None if loader is None else loader.process
        if process is None or process.poll() is not None:
            raise OSError("the loader is not running")
        os.kill(process.pid, signal.SIGSTOP)
        try:
            self._halt.wait(self.settings.stall_s)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGCONT)
        strike.target = f"the loader and its store (pid {process.pid}) for {self.settings.stall_s:.0f} s"

    def _kill_broker(self, strike: Strike) -> None:
        if self.cluster is None:
            raise OSError("the brokers are not this run's: only a local cluster's broker is killed")
        info = self.cluster.info()
        if info is None or len(info.brokers) < 2:
            raise OSError("a broker is killed only in a cluster of several")
        led = _partitions_led(self.pipeline.kafka.client_config(), self.pipeline.settings.topics.prefix)
        broker = max(info.brokers, key=lambda b: (led.get(b.node_id, 0), self.rng.random()))
        os.killpg(broker.pid, signal.SIGKILL)
        strike.target = (
            f"broker {broker.node_id} (pid {broker.pid}, leader of {led.get(broker.node_id, 0)} partitions)"
        )

    def _restart_broker(self, strike: Strike) -> None:
        """The broker comes back once it has been down `broker_down_s`; then until the cluster has every
        replica of the run's topics in sync again."""
        assert self.cluster is not None and strike.at_s is not None
        self._halt.wait(max(0.0, strike.at_s + self.settings.broker_down_s - self.now_s()))
        try:
            self.cluster.up()
        except OSError as exc:
            strike.problem = f"the broker did not come back: {exc}"
            return
        back = self.now_s()
        deadline = time.monotonic() + self.settings.recovery_timeout_s
        while not self._halt.is_set() and time.monotonic() < deadline:
            if _all_in_sync(self.pipeline.kafka.client_config(), self.pipeline.settings.topics.prefix):
                strike.in_sync_s = self.now_s() - back
                self.say(
                    f"{self.now_s():6.1f} s  broker: back, every replica in sync after {strike.in_sync_s:.1f} s"
                )
                return
            time.sleep(0.5)
        strike.problem = (
            f"replicas not in sync within {self.settings.recovery_timeout_s:.0f} s of the broker's return"
        )


def _moved_on(
    before: dict[TopicPartition, tuple[int, int]], now: dict[TopicPartition, tuple[int, int]]
) -> bool:
    """The group has committed past where it was in every partition that has had messages for it since
    (pending at the strike or come after), and in one at least."""
    moved = False
    for tp, (committed, end) in now.items():
        then = before.get(tp, (-1, 0))[0]
        if committed > then:
            moved = True
        elif end > max(then, 0):
            return False
    return moved


def _waiting(
    before: dict[TopicPartition, tuple[int, int]], now: dict[TopicPartition, tuple[int, int]]
) -> str:
    """The partitions that had messages for the group and where it has not committed since the strike."""
    stuck = [
        f"{tp.topic}/{tp.partition} at {committed} of {end}"
        for tp, (committed, end) in sorted(now.items())
        if committed <= before.get(tp, (-1, 0))[0] and end > max(before.get(tp, (-1, 0))[0], 0)
    ]
    return ", ".join(stuck) or "any partition"


def _short(piece: PulseChild) -> str:
    return piece.log.stem  # worker-1, sink, notify


def _topic_partitions(config: dict[str, object], prefix: str) -> list[dict[str, object]]:
    admin = KafkaAdminClient(**config)
    try:
        names = [t for t in admin.list_topics() if t.startswith(prefix)]
        return [p for topic in admin.describe_topics(names) for p in topic["partitions"]]
    finally:
        admin.close()


def _partitions_led(config: dict[str, object], prefix: str) -> dict[int, int]:
    led: dict[int, int] = {}
    for partition in _topic_partitions(config, prefix):
        leader = int(partition["leader_id"])  # type: ignore[call-overload]
        led[leader] = led.get(leader, 0) + 1
    return led


def _all_in_sync(config: dict[str, object], prefix: str) -> bool:
    try:
        partitions = _topic_partitions(config, prefix)
    except (KafkaError, OSError):
        return False
    return bool(partitions) and all(
        len(p["isr_nodes"]) == len(p["replica_nodes"])  # type: ignore[arg-type]
        for p in partitions
    )
