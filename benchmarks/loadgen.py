"""A small HTTP/1.1 load generator: open-loop (fixed rate) or closed-loop, keep-alive connections.

One process runs one asyncio loop (uvloop) with a fixed pool of keep-alive
connections, parsing responses with httptools (the C parser uvicorn uses), so
a request costs the generator a few tens of microseconds and it is not the
bottleneck it would be with a full-featured client.

* **open loop** (like wrk2 / vegeta): request *i* is due at `t0 + i / rate`
  whatever happened to the earlier ones; latency is measured from that due
  time, so a stall shows up in the percentiles instead of being hidden by
  fewer requests being sent (coordinated omission). Due requests queue for the
  next free connection.
* **closed loop**: `conns` connections each send the next request as soon as
  the previous answer is complete; the completion rate is the sustained rate.

Per request it records the latency to the last byte and the time to the first
body byte (for streams, the first SSE event). It reports its own CPU time so
a run can show the generator was not saturated.

Used by `overhead.py` and `soak.py` as a subprocess:
    .venv/bin/python benchmarks/loadgen.py '<json spec>'   → one JSON object on stdout
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import httptools
import orjson

#: ~4 characters per token: a 32k-token prompt is about 128 KB.
LARGE_CHARS = 32_000 * 4
SMALL_PROMPT = "Write a Python function that reverses a string."


def _large_text(chars: int) -> str:
    line = (
        "def handler_{i}(request, db):\n"
        "    rows = db.query('SELECT * FROM t WHERE id = ?', (request.id,))\n"
        "    return [r for r in rows if r.score > {i}]\n\n"
    )
    out: list[str] = ["Review this module and list every bug you find:\n\n"]
    n, i = len(out[0]), 0
    while n < chars:
        piece = line.format(i=i)
        out.append(piece)
        n += len(piece)
        i += 1
    return "".join(out)[:chars]


def make_body(
    *, model: str = "fast", stream: bool = False, large: bool = False, chunks: int = 50
) -> bytes:
    """A chat request body as an OpenAI client would send it."""
    content = _large_text(LARGE_CHARS) if large else SMALL_PROMPT
    body: dict[str, Any] = {
        "model": model,
        "messages": [
            {"role": "system", "content": "You are a helpful coding assistant."},
            {"role": "user", "content": content},
        ],
        "max_tokens": 64,
        "temperature": 0.2,
    }
    if stream:
        body["stream"] = True
        body["fake"] = {"chunks": chunks}
    return orjson.dumps(body)


def make_request(host: str, port: int, path: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\n"
        f"host: {host}:{port}\r\n"
        "content-type: application/json\r\n"
        "accept: */*\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    )
    return head.encode("ascii") + body


@dataclass(slots=True)
class Sample:
    due: float  # when the request should have been sent (open loop) or was sent (closed)
    sent: float
    first: float = 0.0
    done: float = 0.0
    status: int = 0
    nbytes: int = 0


class Conn(asyncio.Protocol):
    """One keep-alive connection; `request()` sends and awaits one complete answer."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[None] | None = None
        self.sample: Sample | None = None
        self.closed = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(exc or ConnectionResetError("server closed the connection"))

    # httptools callbacks
    def on_headers_complete(self) -> None:
        if self.sample is not None:
            self.sample.status = self.parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        s = self.sample
        if s is not None:
            if not s.first:
                s.first = time.perf_counter()
            s.nbytes += len(body)

    def on_message_complete(self) -> None:
        if self.sample is not None:
            self.sample.done = time.perf_counter()
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def _fail(self, exc: BaseException) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)

    async def request(self, raw: bytes, sample: Sample) -> None:
        assert self.transport is not None
        self.sample = sample
        self.waiter = asyncio.get_running_loop().create_future()
        sample.sent = time.perf_counter()
        self.transport.write(raw)
        await self.waiter


@dataclass
class Pool:
    host: str
    port: int
    conns: list[Conn] = field(default_factory=list)

    async def connect(self) -> Conn:
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(Conn, self.host, self.port)
        return conn

    async def replace(self, conn: Conn) -> Conn:
        if conn.transport is not None:
            conn.transport.close()
        return await self.connect()


async def _worker(
    pool: Pool, raw: bytes, queue: asyncio.Queue[float | None], out: list[Sample], errors: list[str]
) -> None:
    conn = await pool.connect()
    while True:
        due = await queue.get()
        if due is None:
            break
        sample = Sample(due=due, sent=0.0)
        try:
            if conn.closed:
                conn = await pool.replace(conn)
            await conn.request(raw, sample)
            if sample.status != 200:
                errors.append(f"status {sample.status}")
            else:
                out.append(sample)
        except Exception as exc:  # a failed request is counted, never fatal to the run
            errors.append(repr(exc)[:200])
            conn = await pool.replace(conn)
    if conn.transport is not None:
        conn.transport.close()


async def open_loop(
    pool: Pool, raw: bytes, rate: float, duration: float, conns: int, phase: float
) -> tuple[list[Sample], list[str], float, float]:
    queue: asyncio.Queue[float | None] = asyncio.Queue()
    out: list[Sample] = []
    errors: list[str] = []
    workers = [asyncio.ensure_future(_worker(pool, raw, queue, out, errors)) for _ in range(conns)]
    await asyncio.sleep(0.05)  # let the connections open before the clock starts
    n = int(rate * duration)
    interval = 1.0 / rate
    t0 = time.perf_counter() + 0.01 + phase * interval
    i = 0
    while i < n:
        now = time.perf_counter()
        due = t0 + i * interval
        if due > now:
            await asyncio.sleep(due - now)
            continue
        while i < n and t0 + i * interval <= now:
            queue.put_nowait(t0 + i * interval)
            i += 1
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    return out, errors, t0, time.perf_counter()


async def closed_loop(
    pool: Pool, raw: bytes, duration: float, conns: int
) -> tuple[list[Sample], list[str], float, float]:
    out: list[Sample] = []
    errors: list[str] = []
    stop_at = 0.0

    async def one() -> None:
        conn = await pool.connect()
        await start.wait()
        while time.perf_counter() < stop_at:
            sample = Sample(due=0.0, sent=0.0)
            try:
                if conn.closed:
                    conn = await pool.replace(conn)
                await conn.request(raw, sample)
                sample.due = sample.sent
                if sample.status != 200:
                    errors.append(f"status {sample.status}")
                else:
                    out.append(sample)
            except Exception as exc:
                errors.append(repr(exc)[:200])
                conn = await pool.replace(conn)
        if conn.transport is not None:
            conn.transport.close()

    start = asyncio.Event()
    tasks = [asyncio.ensure_future(one()) for _ in range(conns)]
    await asyncio.sleep(0.05)
    t0 = time.perf_counter()
    stop_at = t0 + duration
    start.set()
    await asyncio.gather(*tasks)
    return out, errors, t0, time.perf_counter()


def _ms(values: list[float]) -> list[float]:
    return [round(v * 1000, 4) for v in values]


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one load spec (see `main`); return the samples of the measured window."""
    body = make_body(
        model=spec.get("model", "fast"),
        stream=bool(spec.get("stream", False)),
        large=bool(spec.get("large", False)),
        chunks=int(spec.get("chunks", 50)),
    )
    raw = make_request(spec["host"], spec["port"], spec.get("path", "/v1/chat/completions"), body)
    pool = Pool(spec["host"], int(spec["port"]))
    warmup = float(spec.get("warmup", 0.5))
    duration = float(spec["duration"])
    conns = int(spec.get("conns", 32))
    warm: list[Sample] = []
    if spec["mode"] == "open":
        rate = float(spec["rate"])
        phase = float(spec.get("phase", 0.0))
        if warmup > 0:
            warm = (await open_loop(pool, raw, rate, warmup, conns, phase))[0]
        cpu0 = time.process_time()
        samples, errors, t0, t1 = await open_loop(pool, raw, rate, duration, conns, phase)
    else:
        if warmup > 0:
            warm = (await closed_loop(pool, raw, warmup, conns))[0]
        cpu0 = time.process_time()
        samples, errors, t0, t1 = await closed_loop(pool, raw, duration, conns)
    cpu = time.process_time() - cpu0
    wall = t1 - t0
    samples.sort(key=lambda s: s.due)
    return {
        "latency_ms": _ms([s.done - s.due for s in samples]),
        "ttfc_ms": _ms([s.first - s.due for s in samples if s.first]),
        "lag_ms": _ms([s.sent - s.due for s in samples]),
        "completed": len(samples),
        "errors": len(errors),
        "error_examples": sorted(set(errors))[:3],
        "wall_s": wall,
        "cpu_s": cpu,
        "body_bytes": len(body),
        "response_bytes": samples[0].nbytes if samples else 0,
        "warmup_completed": len(warm),
    }


def main() -> None:
    """argv[1]: a JSON spec: host, port, path, mode ("open"|"closed"), rate, duration, warmup,
    conns, phase (0..1, offset of this shard's schedule), model, stream, large, chunks, cpu."""
    spec = orjson.loads(sys.argv[1])
    if spec.get("cpu") is not None and hasattr(os, "sched_setaffinity"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, set(spec["cpu"]))
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        runner = asyncio.run
    result = runner(run(spec))
    sys.stdout.buffer.write(orjson.dumps(result))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
