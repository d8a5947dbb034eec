"""HTTP load for the webhook benchmarks: VK callbacks posted by many concurrent clients, and a bare aiohttp
handler to compare the receiver with (same client, same machine, same run).

The bare handler reads the body and answers `ok`, as a receiver that did nothing else would: what aiohttp
itself costs per request here. It runs as its own process (`python -m pulse.bench.webhook_load PORT`), like
the receiver, so both share the cores with the client the same way.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import aiohttp
import orjson
from aiohttp import web

VK_GROUP = 215000111


def vk_comment(
    comment_id: int,
    post_id: int,
    secret: str,
    date_s: int,
    *,
    group: int = VK_GROUP,
    reply_to: int | None = None,
) -> bytes:
    """A VK Callback API `wall_reply_new` (field names as VK documents them); with `reply_to`, the
    community's own answer to that comment."""
    obj: dict[str, object] = {
        "id": comment_id, "from_id": 700_000 + comment_id % 5_000, "date": date_s, "text": "когда доставка?",
        "post_id": post_id, "owner_id": -group, "parents_stack": [],
    }  # fmt: skip
    if reply_to is not None:
        obj |= {
            "from_id": -group,
            "reply_to_comment": reply_to,
            "text": "Завтра!",
            "parents_stack": [reply_to],
        }
    body = {"type": "wall_reply_new", "object": obj, "group_id": group, "event_id": f"b{comment_id:x}",
            "v": "5.199", "secret": secret}  # fmt: skip
    return orjson.dumps(body)


@dataclass(slots=True)
class LoadResult:
    requests: int
    seconds: float
    latencies_ms: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0

    @property
    def per_s(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile_ms(self, q: float) -> float:
        return percentile(self.latencies_ms, q)


def percentile(values: Sequence[float], q: float) -> float:
    """The value at quantile `q` (0..1) of `values` by rank (1.0: the largest); NaN when there are none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def post_all(
    url: str, bodies: Sequence[bytes], concurrency: int, timeout_s: float = 30.0
) -> LoadResult:
    """Posts every body with `concurrency` requests in flight; each latency from send to full answer."""
    result = LoadResult(len(bodies), 0.0)
    queue = iter(bodies)
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def client(session: aiohttp.ClientSession) -> None:
        for body in queue:
            started = time.perf_counter()
            try:
                async with session.post(
                    url, data=body, headers={"Content-Type": "application/json"}
                ) as answer:
                    await answer.read()
                    result.statuses[answer.status] = result.statuses.get(answer.status, 0) + 1
            except (aiohttp.ClientError, TimeoutError):
                result.errors += 1
                continue
            result.latencies_ms.append((time.perf_counter() - started) * 1000)

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        started = time.perf_counter()
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
        result.seconds = time.perf_counter() - started
    return result


async def wait_until_up(url: str, timeout_s: float = 30.0, check: Callable[[], None] = lambda: None) -> None:
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as session:
        while True:
            check()
            try:
                async with session.get(url) as answer:
                    if answer.status < 500:
                        return
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing answered at {url} within {timeout_s:.0f} s")
            await asyncio.sleep(0.1)


def bare_app() -> web.Application:
    async def handle(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/webhooks/vk", handle)
    app.router.add_get("/healthz", handle)
    return app


if __name__ == "__main__":
    web.run_app(bare_app(), host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
