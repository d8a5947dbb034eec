"""`pulse bench live`: the live path as a platform and an ops channel see it, on the real pieces.

The whole pipeline runs as `pulse run --webhooks` starts it (receiver, a stream worker, the loader, the
notifier; private topics, groups and store, deleted afterwards), its notifier posting to a JSON webhook
that this process serves and that notes when each alert arrives. For the probes, a steady background of
simulated events goes into Kafka (`background_rate` events/s, stamped with the wall clock), so the
alert figures are taken on a pipeline that has work to do. In order:

1. The receiver's throughput: `load_requests` VK comment callbacks (a viral post's) from `concurrency`
   clients, each answered only once Kafka has its events, first with nothing but the receiver and the
   broker running (a receiver deployed on its own machine), then the same client posts as many to a bare
   aiohttp handler (`pulse.bench.webhook_load`) in its own process: what aiohttp itself allows here, in the
   same run (each server first gets `WARM_UP_REQUESTS` that are not counted). Then, with the worker, loader and notifier started on the same cores and processing what it
   receives, `load_requests` more through the receiver.
2. Under the background load: probe comments through the receiver, one every `probe_every_s`, in a
   community whose SLA is `sla_s`: half never answered (their `unanswered_comment` is timed from the deadline the platform's own
   timestamp sets), a quarter answered late (their `resolved` is timed from the reply's POST), a quarter
   answered in time (any alert for them is counted as false).
"""

from __future__ import annotations

import asyncio
import shutil
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import msgspec
import orjson
import uvloop
from aiohttp import web
from pydantic import SecretStr

from agents import AgentError, EventPublisher, Simulator, SimulatorSettings
from agents.webhook_settings import VkSettings
from pulse.bench.webhook_load import LoadResult, post_all, vk_comment, wait_until_up
from pulse.errors import PulseError
from pulse.local.child_process import PulseChild
from pulse.local.local_kafka import free_port
from pulse.local.local_pipeline import LocalPipeline, RunOptions
from pulse.settings import Settings, on_cluster
from pulse.topics import ensure_topics

PROBE_GROUP = 215000777
WARM_UP_REQUESTS = 2_000  # before each server is measured, not counted: connections, first allocations
LOAD_GROUP = 215000555


@dataclass(slots=True)
class LiveBenchResult:
    receiver: LoadResult  # in the running pipeline
    bare: LoadResult
    probe_answers: LoadResult
    receiver_alone: LoadResult | None = None  # with nothing but the broker running
    unanswered_ms: list[float] = field(default_factory=list)  # receipt - deadline
    resolved_ms: list[float] = field(default_factory=list)  # receipt - the reply's POST
    missing: dict[str, int] = field(default_factory=dict)  # expected alerts that never came, by kind
    false_alerts: int = 0
    load_cpu_s: dict[str, float] = field(default_factory=dict)  # per process, during the receiver's load
    background_events: int = 0
    background_s: float = 0.0


class AlertRecorder:
    """A JSON webhook destination on 127.0.0.1 that notes when each alert arrived (wall clock)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.received: dict[str, float] = {}  # alert_id -> arrival, time.time()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._serve, name="alert-recorder", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def __enter__(self) -> AlertRecorder:
        self._thread.start()
        if not self._ready.wait(10):
            raise PulseError("the alert recorder did not start")
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _serve(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()

        async def hook(request: web.Request) -> web.Response:
            arrived = time.time()
            body = orjson.loads(await request.read())
            for alert in body.get("alerts", []):
                self.received.setdefault(alert["alert_id"], arrived)
            return web.Response(text="ok")

        app = web.Application()
        app.router.add_post("/hook", hook)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port).start()
        self._ready.set()
        await self._stop.wait()
        await runner.cleanup()


class Background:
    """Simulated events into Kafka at `rate` events/s, stamped with the wall clock, until stopped."""

    def __init__(self, settings: Settings, rate: float) -> None:
        self.settings = settings
        self.rate = rate
        self.sent = 0
        self.seconds = 0.0
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="background", daemon=True)

    def __enter__(self) -> Background:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        s = self.settings
        events = Simulator(SimulatorSettings(communities=20, seed=7)).events(count=10**12)
        try:
            with EventPublisher(s.kafka, s.publisher, s.topics.names) as publisher:
                started = time.monotonic()
                while not self._stop.is_set():
                    elapsed = time.monotonic() - started
                    now_ms = time.time_ns() // 1_000_000
                    while self.sent < int(elapsed * self.rate):
                        publisher.publish(msgspec.structs.replace(next(events), ts=now_ms))
                        self.sent += 1
                    publisher.poll()
                    time.sleep(0.01)
                self.seconds = time.monotonic() - started
        except (AgentError, OSError) as exc:  # reported by the bench, which stops on it
            self.error = exc


def run_live_bench(
    settings: Settings,
    *,
    load_requests: int,
    concurrency: int,
    probes: int,
    probe_every_s: float,
    sla_s: float,
    background_rate: float,
    say: Callable[[str], None] = lambda _: None,
) -> LiveBenchResult:
    run_id = f"bench-live-{uuid.uuid4().hex[:8]}-"
    store = (settings.state_dir / "bench" / f"store-{run_id.rstrip('-')}").resolve()
    secret = uuid.uuid4().hex + uuid.uuid4().hex
    log_dir = settings.state_dir.resolve() / "bench" / run_id.rstrip("-")
    with AlertRecorder() as recorder:
        s = on_cluster(_bench_settings(settings, run_id, store, secret, recorder.url, sla_s))
        pipeline = LocalPipeline(s, RunOptions(workers=1, notify=True, webhooks=True), log_dir)
        bare_port = free_port()
        bare = PulseChild(
            "the bare handler", [str(bare_port)], {}, log_dir / "bare.log", module="pulse.bench.webhook_load"
        )
        try:
            receiver_url = f"http://127.0.0.1:{s.webhooks.port}"
            now_s = int(time.time())
            bodies = [
                vk_comment(10_000_000 + i, 1 + i % 500, secret, now_s, group=LOAD_GROUP)
                for i in range(2 * load_requests + WARM_UP_REQUESTS)
            ]  # fmt: skip
            warm_up, bodies = bodies[:WARM_UP_REQUESTS], bodies[WARM_UP_REQUESTS:]
            alone_bodies, bodies = bodies[:load_requests], bodies[load_requests:]
            ensure_topics(s.kafka, s.topics.partitions(pipeline.topics), s.topics.replicas)
            children = pipeline.plan()
            receiver_child = next(c for c in children if c.args == ["webhooks"])
            receiver_child.start()
            uvloop.run(wait_until_up(f"{receiver_url}/healthz", 60, receiver_child.check_alive))
            say(f"the receiver alone (nothing else running but the broker): {load_requests:,} VK callbacks, "
                f"{concurrency} in flight ...")  # fmt: skip
            uvloop.run(post_all(f"{receiver_url}/webhooks/vk", warm_up, concurrency))  # not counted
            alone = uvloop.run(post_all(f"{receiver_url}/webhooks/vk", alone_bodies, concurrency))
            say("the bare handler, same client ...")
            bare.start()
            uvloop.run(wait_until_up(f"http://127.0.0.1:{bare_port}/healthz", 30))
            uvloop.run(
                post_all(f"http://127.0.0.1:{bare_port}/webhooks/vk", warm_up, concurrency)
            )  # not counted
            bare_result = uvloop.run(
                post_all(f"http://127.0.0.1:{bare_port}/webhooks/vk", alone_bodies, concurrency)
            )
            bare.stop()
            for child in children:
                if child is not receiver_child:
                    child.start()
            pipeline.wait_settled(timeout_s=180)
            pipeline.wait_processed(timeout_s=300)  # the first callbacks' comments are out of the way
            say(f"the receiver in the pipeline (worker, loader, notifier on the same cores): {load_requests:,} "
                "more ...")  # fmt: skip
            cpu_before = _cpu(pipeline)
            receiver = uvloop.run(post_all(f"{receiver_url}/webhooks/vk", bodies, concurrency))
            load_cpu = {name: spent - cpu_before.get(name, 0.0) for name, spent in _cpu(pipeline).items()}
            say(f"the receiver's counters: {uvloop.run(_get_json(f'{receiver_url}/stats'))}")
            pipeline.wait_processed(timeout_s=300)  # the callbacks' comments are out of the way
            with Background(s, background_rate) as background:
                say(
                    f"{probes} probe comments, SLA {sla_s:g} s, under {background_rate:,.0f} events/s of background ..."
                )
                result = uvloop.run(
                    _probe(receiver_url, secret, recorder, probes, probe_every_s, sla_s, pipeline)
                )
                result.receiver, result.bare, result.load_cpu_s = receiver, bare_result, load_cpu
                result.receiver_alone = alone
            if background.error is not None:
                raise PulseError(f"the background load failed: {background.error}")
            result.background_events, result.background_s = background.sent, background.seconds
            return result
        finally:
            if bare.process is not None and bare.exited() is None:
                bare.stop()
            pipeline.stop()
            pipeline.delete_topics_and_groups()
            shutil.rmtree(store, ignore_errors=True)


async def _get_json(url: str) -> object:
    async with aiohttp.ClientSession() as session, session.get(url) as answer:
        return await answer.json()


def _cpu(pipeline: LocalPipeline) -> dict[str, float]:
    """CPU seconds so far of each child and of this process (the client)."""
    spent = {"this process (the client)": time.process_time()}
    for i, child in enumerate(pipeline.children):
        name = child.name if child not in pipeline.workers else f"{child.name} {i + 1}"
        spent[name] = child.cpu_s()
    return spent


def _bench_settings(
    settings: Settings, run_id: str, store: Path, secret: str, hook: str, sla_s: float
) -> Settings:
    return settings.model_copy(
        update={
            "topics": settings.topics.model_copy(update={"prefix": run_id}),
            "processor": settings.processor.model_copy(
                update={
                    "app_id": f"{run_id}processor",
                    "sla_default_s": 3_600.0,  # the background's and the load's comments: no alert in the run
                    "sla_per_community_s": {str(PROBE_GROUP): sla_s},
                    "at_risk_fraction": None,
                }
            ),
            "sink": settings.sink.model_copy(update={"group": f"{run_id}sink"}),
            "notify": settings.notify.model_copy(
                update={
                    "group": f"{run_id}notify",
                    "ledger_topic": f"{run_id}ledger",
                    "webhook_url": hook,
                    "rate_per_minute": 6_000.0,
                    "rate_burst": 1_000,
                    "digest_threshold": 10_000,
                }
            ),
            "webhooks": settings.webhooks.model_copy(
                update={"port": free_port(), "vk": VkSettings(secret=SecretStr(secret)), "host": "127.0.0.1"}
            ),
            "clickhouse": settings.clickhouse.model_copy(
                update={"dsn": f"chdb://{store}", "database": "bench"}
            ),
            "log_level": "WARNING",
        }
    )


async def _probe(
    url: str,
    secret: str,
    recorder: AlertRecorder,
    probes: int,
    every_s: float,
    sla_s: float,
    pipeline: LocalPipeline,
) -> LiveBenchResult:
    """Posts the probe comments and their replies on schedule, then waits for the alerts they call for."""
    result = LiveBenchResult(LoadResult(0, 0.0), LoadResult(0, 0.0), LoadResult(0, 0.0))
    sla_ms = int(sla_s * 1000)
    unanswered: dict[str, float] = {}  # alert id -> deadline (s)
    resolved: dict[str, float] = {}  # alert id -> when the reply was posted (s)
    in_time: list[str] = []
    replies: list[tuple[float, bytes, str | None]] = []  # (when, body, resolved alert id)
    answers = result.probe_answers

    async with aiohttp.ClientSession() as session:

        async def post(body: bytes) -> float:
            started = time.perf_counter()
            async with session.post(f"{url}/webhooks/vk", data=body) as answer:
                await answer.read()
                if answer.status != 200:
                    raise PulseError(f"the receiver answered {answer.status} to a probe")
            answers.latencies_ms.append((time.perf_counter() - started) * 1000)
            answers.requests += 1
            return time.time()

        begun = time.time()
        for i in range(probes):
            while time.time() < begun + i * every_s:
                await _reply_due(replies, post, resolved)
                await asyncio.sleep(0.005)
            comment_id = 20_000_000 + i
            date_s = int(time.time())
            await post(vk_comment(comment_id, 77, secret, date_s, group=PROBE_GROUP))
            deadline_s = date_s + sla_ms / 1000
            alert_id = f"vk:{PROBE_GROUP}:{comment_id}"
            fate = i % 4
            if fate in (0, 1):
                unanswered[f"{alert_id}:unanswered_comment"] = deadline_s
            else:
                reply_at = deadline_s + 1.5 if fate == 2 else max(time.time() + 0.2, deadline_s - 2.0)
                reply = vk_comment(
                    30_000_000 + i, 77, secret, int(reply_at), group=PROBE_GROUP, reply_to=comment_id
                )
                replies.append((reply_at, reply, f"{alert_id}:resolved" if fate == 2 else None))
                if fate == 3:
                    in_time.append(f"{alert_id}:unanswered_comment")
        while replies:
            await _reply_due(replies, post, resolved)
            await asyncio.sleep(0.005)
        wanted = {**unanswered, **resolved}
        deadline = time.time() + sla_s + 30
        while time.time() < deadline and not all(a in recorder.received for a in wanted):
            pipeline.check()
            await asyncio.sleep(0.1)
    result.unanswered_ms = [
        (recorder.received[a] - t) * 1000 for a, t in unanswered.items() if a in recorder.received
    ]
    result.resolved_ms = [
        (recorder.received[a] - t) * 1000 for a, t in resolved.items() if a in recorder.received
    ]
    for kind, expected in (("unanswered_comment", unanswered), ("resolved", resolved)):
        result.missing[kind] = sum(1 for a in expected if a not in recorder.received)
    result.false_alerts = sum(1 for a in in_time if a in recorder.received)
    return result


async def _reply_due(
    replies: list[tuple[float, bytes, str | None]],
    post: Callable[[bytes], Awaitable[float]],
    resolved: dict[str, float],
) -> None:
    now = time.time()
    for entry in [r for r in replies if r[0] <= now]:
        replies.remove(entry)
        posted = await post(entry[1])
        if entry[2] is not None:
            resolved[entry[2]] = posted
