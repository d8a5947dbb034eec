"""The whole pipeline on one machine, for `pulse run`: stream workers, the warehouse loader and the alert
notifier as child processes (each a real `pulse` command, as in production), on one set of topics.

Knowing when a bounded input is done: the workers have committed every input message (and they commit
only after their outputs are flushed); then every partition is told the input's newest event time (an
end-of-input tick), so deadlines the input passed are judged in every partition; once the workers have
committed those ticks, the loader has inserted everything when its groups have committed every output.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kafka import KafkaAdminClient, KafkaProducer, TopicPartition
from kafka.admin import MemberToRemove
from kafka.errors import KafkaError

from pipeline.warehouse.query_service import address_file
from pipeline.warehouse.routes import sink_routes
from pulse.errors import PulseError, TopicError
from pulse.local.child_process import PulseChild
from pulse.local.worker_process import WorkerProcess
from pulse.settings import Settings, as_environment, on_cluster
from pulse.topics import (
    WAIT_POLL_S,
    OffsetReader,
    ensure_topics,
    existing_topics,
    wait_committed,
    wait_group_settled,
)
from schemas.wire import end_of_input_tick, state_changelog_topic

log = logging.getLogger(__name__)

RESTARTS = 3  # per piece and run; then its exit ends the run
RESTART_DELAYS_S = (0.0, 1.0, 5.0)  # before the first, second and third restart of a piece
DELETE_TIMEOUT_S = 60.0  # a private run's clean-up, tried again while a lost broker is being fenced


@dataclass(frozen=True, slots=True)
class RunOptions:
    workers: int = 1
    notify: bool = True
    webhooks: bool = False
    dashboard: bool = False  # `pulse dashboard` too, reading through the loader


class LocalPipeline:
    """Starts the pieces on `settings` (already holding the run's Kafka address, store and topic prefix),
    logs under `log_dir`; `stop()` ends them all."""

    def __init__(
        self,
        settings: Settings,
        options: RunOptions,
        log_dir: Path,
        *,
        clock: Callable[[], float] = time.monotonic,
        restarts: int = RESTARTS,
    ) -> None:
        self.settings = settings
        self.options = options
        self.log_dir = log_dir
        self.topics = settings.topics.names
        self.kafka = settings.kafka
        self.app_id = settings.processor.app_id
        self.sink_group = settings.sink.group
        self.workers: list[WorkerProcess] = []
        self.children: list[PulseChild] = []
        self.loader: PulseChild | None = None
        self.notifier: PulseChild | None = None
        self.max_restarts = restarts  # per piece and run
        self._restarts: Counter[PulseChild] = Counter()  # per piece
        self._restart_at: dict[PulseChild, float] = {}  # pieces to be started (again) then
        self._clock = clock

    def child_env(self) -> dict[str, str]:
        """The children's environment: ours without any `PULSE_*` variable, then every resolved setting as
        one (`pulse.settings.as_environment`), so what a child reads is exactly what this run resolved,
        whatever the setting. The one difference: the notifier of a run starts from the alerts topic's
        beginning, so a notifier that joins late still sends the run's alerts."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PULSE_")}
        env.update(as_environment(self.settings))
        env["PULSE_NOTIFY__START_FROM"] = "earliest"
        return env

    def instance_id(self, worker: int) -> str:
        """The static group member id of the `worker`-th stream worker (from 0), kept across its restarts."""
        return f"{self.app_id}-worker-{worker + 1}"

    @staticmethod
    def member_id(group: str) -> str:
        """The static member id of the loader or the notifier of this run in `group`."""
        return f"{group}-1"

    def plan(self) -> list[PulseChild]:
        """The run's children, not started yet: the stream workers, the loader, and as the options say
        the notifier and the webhook receiver."""
        s = self.settings
        env = self.child_env()
        self.workers, self.children = [], []
        for i in range(self.options.workers):
            worker = WorkerProcess(
                self.kafka, s.topics.prefix, s.topics.event_partitions, self.log_dir / f"worker-{i + 1}.log",
                {"app_id": s.processor.app_id, "group_instance_id": self.instance_id(i)}, env,
            )  # fmt: skip
            self.workers.append(worker)
            self.children.append(worker)
        # Static members, as the workers are: one started again takes its partitions back at once.
        loader_env = env | {"PULSE_SINK__INSTANCE_ID": self.member_id(self.sink_group)}
        self.loader = PulseChild("the loader", ["sink"], loader_env, self.log_dir / "sink.log")
        self.children.append(self.loader)
        if self.options.notify:
            notifier_env = env | {"PULSE_NOTIFY__INSTANCE_ID": self.member_id(s.notify.group)}
            self.notifier = PulseChild("the notifier", ["notify"], notifier_env, self.log_dir / "notify.log")
            self.children.append(self.notifier)
        if self.options.webhooks:
            self.children.append(
                PulseChild("the webhook receiver", ["webhooks"], env, self.log_dir / "webhooks.log")
            )
        if self.options.dashboard:  # reads through the loader's query port, never takes the store from it
            dashboard = ["dashboard", "--via-loader"]
            self.children.append(PulseChild("the dashboard", dashboard, env, self.log_dir / "dashboard.log"))
        return self.children

    def start(self, *, notifier_later: bool = False) -> None:
        """Creates the run's topics and starts its pieces. The topics' replication factor is resolved here,
        once: the children are handed the number (`child_env`) and never ask the cluster again.

        With `notifier_later`, the notifier starts at the first `check()`: for a caller with work of its
        own to do first, as a replay. Nothing waits for the notifier, and it reads the alerts from their
        beginning. On 2 shared cores its start-up (~1 s of CPU) delayed the worker's: the
        worker's partitions came 7.0-7.9 s after the start with it, 4.5-5.8 s without (the loader's start,
        with chDB, costs as much again, but the loader must keep up with the worker's outputs)."""
        self.settings = s = on_cluster(self.settings)
        ensure_topics(
            self.kafka,
            s.topics.partitions(self.topics),
            s.topics.replicas,
            s.topics.retention_bytes,
            s.topics.retention_ms(self.topics),
        )
        for child in self.plan():
            if notifier_later and child is self.notifier:
                self._restart_at[child] = self._clock()
            else:
                child.start()

    def check(self) -> None:
        """Raises if a piece is gone for good. Any piece that exited with an error (a crash, a kill -9, a
        worker whose state recovery stalled) is started again instead, as compose's restart policy would:
        after `RESTART_DELAYS_S[n]` for its n-th restart, up to `max_restarts` times in a run, each with a line
        in the log. A worker rejoins its group, the loader goes on from its last commit (a batch stored and
        not committed is stored again, which FINAL collapses), the notifier from its ledger. A piece that
        exited cleanly was stopped by someone: that ends the run, as does one that keeps failing. Pieces
        whose start `start()` left for later start here."""
        now = self._clock()
        for child in self.children:
            due = self._restart_at.get(child)
            if due is not None:
                if now < due:
                    continue
                del self._restart_at[child]
                child.start()
                continue
            code = child.exited()
            if code and self._restarts[child] < self.max_restarts:
                delay = RESTART_DELAYS_S[min(self._restarts[child], len(RESTART_DELAYS_S) - 1)]
                self._restarts[child] += 1
                self._restart_at[child] = now + delay
                log.warning(
                    "%s exited with %d: starting it again in %.0f s (%d of %d; log: %s)",
                    child.name, code, delay, self._restarts[child], self.max_restarts, child.log,
                )  # fmt: skip
                continue
            child.check_alive()

    @property
    def restarts(self) -> dict[str, int]:
        """How many times each piece was started again in this run, by name (workers summed)."""
        counts: dict[str, int] = {}
        for child, n in self._restarts.items():
            counts[child.name] = counts.get(child.name, 0) + n
        return counts

    def stop(self) -> dict[str, int]:
        """SIGTERM to every piece, sources first, then waits for them all; their exit codes by name, 0 for a
        piece that stopped cleanly. They stop side by side: one after another, a run's teardown took 13 s
        (faust's worker shutdown, the notifier sending what it still held), longer than a 400k-event
        replay's processing.

        A piece that dies of the SIGTERM itself (-15) was still starting, before its handler was in place
        (seen: a notifier started again 2 s before the end of a run after a broker loss): it had taken no
        work yet, so that counts as a clean stop too."""
        running = [c for c in reversed(self.children) if c.process is not None and c.exited() is None]
        for child in running:
            child.terminate()
        codes = {}
        for child in reversed(self.children):
            if child.process is not None:
                code = child.stop()
                codes[child.name] = 0 if code == -signal.SIGTERM else code
        return codes

    def wait_settled(self, timeout_s: float) -> None:
        """Until every stream worker has joined and holds partitions."""
        wait_group_settled(
            self.kafka, self.app_id, self.options.workers, self.settings.topics.event_partitions, timeout_s,
            "the stream workers", self.check,
        )  # fmt: skip

    def wait_processed(self, timeout_s: float) -> None:
        inputs = list(self.topics.processor_inputs)
        wait_committed(self.kafka, self.app_id, inputs, timeout_s, "the stream workers", self.check)

    def finish_input(self, newest_event_ms: int, timeout_s: float) -> None:
        """Tells every partition the input's newest event time and waits until the workers committed
        those ticks (the ticks topic also carries the workers' own beats, so its lag is never reliably
        zero: the wait is for these ticks' offsets)."""
        producer = KafkaProducer(**self.kafka.client_config(), acks="all")
        try:
            sent = [
                producer.send(
                    self.topics.ticks, value=end_of_input_tick(newest_event_ms), partition=partition
                )
                for partition in range(self.settings.topics.event_partitions)
            ]
            wanted = {
                TopicPartition(m.topic, m.partition): m.offset + 1 for m in (f.get(timeout=60) for f in sent)
            }
        except KafkaError as exc:
            raise TopicError(f"cannot send the end-of-input ticks: {exc}") from exc
        finally:
            producer.close()
        deadline = time.monotonic() + timeout_s
        committed: dict[TopicPartition, int] = {}
        error: TopicError | None = None
        with OffsetReader(self.kafka) as reader:
            while time.monotonic() < deadline:
                self.check()
                try:  # a broker lost meanwhile: the group's coordinator moves, the reader asks afresh
                    committed = reader.committed(self.app_id, list(wanted))
                except TopicError as exc:
                    error = exc
                    time.sleep(WAIT_POLL_S)
                    continue
                if all(committed[tp] >= offset for tp, offset in wanted.items()):
                    return
                time.sleep(WAIT_POLL_S)
        raise PulseError(f"the stream workers did not take the end of the input within {timeout_s:.0f} s: "
                         f"committed {committed}, wanted {wanted}; last error reading them: {error}")  # fmt: skip

    def wait_loaded(self, timeout_s: float) -> None:
        sources = [topic for _, topics in sink_routes(self.topics) for topic in topics]
        try:
            wait_committed(self.kafka, self.sink_group, sources, timeout_s, "the loader", self.check)
        except TopicError as exc:
            tail = self.loader.log_tail() if self.loader is not None else ""
            raise TopicError(f"{exc}; {tail}") from exc
        served = address_file(self.settings.clickhouse)
        deadline = time.monotonic() + 60
        while served is not None and not served.exists():  # queries go through the loader, never around it
            self.check()
            if time.monotonic() > deadline:
                raise PulseError(f"the loader does not serve queries ({served} missing)")
            time.sleep(0.1)

    def delete_topics_and_groups(self, timeout_s: float = DELETE_TIMEOUT_S) -> None:
        """For a private run, once it stopped: its topics, its workers' changelog, its notifier's delivery
        ledger and its consumer groups go (groups would otherwise stay on the broker, empty, until their
        offsets expire after days).

        A broker of a cluster lost shortly before stays in the cluster's metadata until the controller
        fences it (`broker.session.timeout.ms`, 9 s by default), and requests sent to it fail meanwhile
        (seen: ECONNREFUSED from `list_groups`, which asks every broker, a second after a kill -9). So a
        failed attempt is made again with a new client, until `timeout_s`; each attempt only does what
        is left."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self._delete_topics_and_groups()
                return
            except (KafkaError, OSError) as exc:
                if time.monotonic() >= deadline:
                    raise TopicError(f"cannot delete the run's topics and groups: {exc}") from exc
                log.warning("deleting the run's topics and groups failed (%s); trying again", exc)
                time.sleep(1.0)

    def _delete_topics_and_groups(self) -> None:
        changelog = state_changelog_topic(self.app_id)
        ledger = self.settings.topics.prefix + self.settings.notify.ledger_topic
        mine = {self.app_id, self.sink_group}
        prefix = self.settings.topics.prefix
        if self.options.notify and prefix and self.settings.notify.group.startswith(prefix):
            mine.add(self.settings.notify.group)  # never a group shared with a live notifier
        admin = KafkaAdminClient(**self.kafka.client_config())
        try:
            doomed = sorted(existing_topics(admin, {*self.topics.all, self.topics.ticks, changelog, ledger}))
            if doomed:
                admin.delete_topics(doomed)
            groups = mine & {group["group_id"] for group in admin.list_groups()}
            if self.app_id in groups and self.workers:
                # Static members do not leave when they stop (that is what lets a restarted worker take its
                # partitions back at once): they are removed here, or the group stays until their sessions
                # expire and cannot be deleted. (Members already removed are reported, not raised.)
                admin.remove_group_members(
                    self.app_id,
                    [MemberToRemove(group_instance_id=self.instance_id(i)) for i in range(len(self.workers))],
                )
            for group in sorted(groups - {self.app_id}):  # the loader and notifier: static members too
                admin.remove_group_members(group, [MemberToRemove(group_instance_id=self.member_id(group))])
            if groups:
                admin.delete_groups(sorted(groups))
        finally:
            admin.close()
