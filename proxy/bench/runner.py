"""Run suites against variants through the proxy and build the result document.

A run has two stages, so scoring never competes with the model for the CPU
while speed is measured:

1. *generate*: for each variant and suite (a "phase"), send every task
   `repeat` times, at most `concurrency` at once, through the proxy (the
   variant named directly as `model`), sampling the backend's resource use
   for the phase. Each variant is asked in its own protocol: a base variant
   (`api: completion`) gets a task's completion form where it has one
   (HumanEval's original protocol, `Task.as_completion`), a chat variant the
   chat task; every record says which protocol was used;
2. *score*: run every answer in the sandbox, in worker threads.

The result document (`schema: 1`) holds the settings, the machine, the
sandbox's isolation, suite versions, variant identities, per-(variant, suite)
summaries and every sample. `summarize` is pure and shared with the report.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import importlib
import os
import platform
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx
import psutil

from ..config import RouterConfig
from ..errors import BenchInterrupted, IdentityUnavailable
from ..pinning import read_identity, resolve_target
from . import sandbox
from .client import Sample, request_body, run_request
from .scoring import Score, pass_at_k, score, toolchains
from .stats import spread, wilson
from .suite import Suite, Task
from .usage import UsageSampler

__all__ = [
    "SCHEMA",
    "RunSettings",
    "VariantTarget",
    "machine_info",
    "percentile",
    "run_benchmark",
    "summarize",
    "variant_identity",
]

SCHEMA = 1
_ANSWER_LIMIT = 4000
_OUTPUT_LIMIT = 1000

Progress = Callable[[int, int, str], None]
#: how a task was put to a variant: chat turns, a raw prompt to continue (a base model's
#: protocol), or a fill-in-the-middle prompt with a suffix
Protocol = Literal["chat", "completion", "fim"]


@dataclass(frozen=True, slots=True)
class RunSettings:
    repeat: int = 1
    concurrency: int = 1
    #: None: 0 for a single sample, 0.8 when sampling several (pass@k needs variety)
    temperature: float | None = None
    #: caps every task's own max_tokens
    max_tokens: int | None = None
    #: first N tasks of each suite
    limit: int | None = None
    request_timeout: float = 600.0
    score_workers: int = max(1, min(8, os.cpu_count() or 1))
    #: run answers without bubblewrap (only resource limits); reports say so first
    unsafe_no_sandbox: bool = False
    #: one unmeasured request per variant before its timings are taken
    warmup: bool = True

    @property
    def effective_temperature(self) -> float:
        if self.temperature is not None:
            return self.temperature
        return 0.0 if self.repeat == 1 else 0.8

    def as_dict(self) -> dict[str, Any]:
        return {
            "repeat": self.repeat,
            "concurrency": self.concurrency,
            "temperature": self.effective_temperature,
            "max_tokens": self.max_tokens,
            "limit": self.limit,
            "request_timeout": self.request_timeout,
            "unsafe_no_sandbox": self.unsafe_no_sandbox,
            "warmup": self.warmup,
        }


@dataclass(slots=True)
class VariantTarget:
    """One variant to benchmark and what is known about it."""

    name: str
    #: has a fill-in-the-middle format (None: unknown, e.g. benching a remote proxy)
    fim: bool | None = None
    info: dict[str, Any] = field(default_factory=dict)
    pid: Callable[[], int | None] | None = None
    #: `variants.<name>.api`: "completion" for a base model (None: unknown, taken as chat)
    api: str | None = None

    def protocol_for(self, task: Task) -> tuple[Protocol, Task]:
        """The protocol this variant is asked `task` in, and the task in that form."""
        if not task.chat:
            return ("fim" if task.suffix else "completion"), task
        if self.api == "completion":
            completion = task.as_completion()
            if completion is not None:
                return "completion", completion
        return "chat", task


@dataclass(slots=True)
class _Item:
    variant: str
    suite: Suite
    task: Task
    sample_no: int
    protocol: Protocol = "chat"
    sample: Sample | None = None
    score: Score | None = None


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in 0..100); None for no values."""
    if not values:
        return None
    data = sorted(values)
    if len(data) == 1:
        return data[0]
    pos = (len(data) - 1) * q / 100.0
    low = int(pos)
    high = min(low + 1, len(data) - 1)
    return data[low] + (data[high] - data[low]) * (pos - low)


def _stats(values: Sequence[float]) -> dict[str, float | None]:
    def r(x: float | None) -> float | None:
        return None if x is None else round(x, 6)

    return {
        "p50": r(percentile(values, 50)),
        "p95": r(percentile(values, 95)),
        "mean": r(sum(values) / len(values)) if values else None,
        "n": len(values),
    }


def machine_info() -> dict[str, Any]:
    cpu_model = platform.processor() or None
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    return {
        "os": platform.platform(),
        "python": platform.python_version(),
        "cpu_model": cpu_model,
        "cpu_count": os.cpu_count(),
        "memory_bytes": psutil.virtual_memory().total,
        "gpus": _gpu_names(),
    }


def _gpu_names() -> list[str]:
    try:
        nvml: Any = importlib.import_module("pynvml")
        nvml.nvmlInit()
        names = []
        for i in range(nvml.nvmlDeviceGetCount()):
            name = nvml.nvmlDeviceGetName(nvml.nvmlDeviceGetHandleByIndex(i))
            names.append(name.decode() if isinstance(name, bytes) else str(name))
        return names
    except Exception:
        return []


async def variant_identity(
    cfg: RouterConfig, name: str, client: httpx.AsyncClient, urls: Mapping[str, str] | None = None
) -> dict[str, Any] | None:
    """What the server really serves for a variant (`proxy.pinning`), or None if unknown."""
    try:
        target = resolve_target(cfg, name, urls)
        if target is None:
            return None
        seen = await read_identity(client, target)
    except Exception as exc:
        return {"unavailable": f"{type(exc).__name__}: {exc}"[:300]}
    if isinstance(seen, IdentityUnavailable):
        return {"unavailable": seen.reason[:300]}
    result: dict[str, Any] = seen.as_dict()
    return result


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


_Phase = tuple[VariantTarget, Suite, list[_Item]]


async def run_benchmark(
    client: httpx.AsyncClient,
    variants: Sequence[VariantTarget],
    suites: Sequence[Suite],
    settings: RunSettings = RunSettings(),
    *,
    headers: Mapping[str, str] | None = None,
    progress: Progress | None = None,
    should_continue: Callable[[], bool] | None = None,
    meta: Mapping[str, Any] | None = None,
    stop: Callable[[], bool] | None = None,
) -> dict[str, Any]:
    """Generate and score; return the result document. `client` has the proxy as base URL.

    `should_continue` returning False abandons the run (`BenchInterrupted`); `stop`
    returning True ends generation early but scores and returns what was answered,
    marked `"interrupted": true`."""
    started_at, t0 = _now(), time.monotonic()
    if not settings.unsafe_no_sandbox:
        found, why = await asyncio.to_thread(sandbox.bubblewrap)
        if found is None:  # refuse before spending an hour generating unscoreable answers
            raise sandbox.SandboxUnavailable(why + "; pass --unsafe-no-sandbox to run anyway")
    suites = [s.limited(settings.limit) for s in suites]
    phases, skipped = _plan(variants, suites, settings.repeat)
    usage: dict[tuple[str, str], dict[str, Any] | None] = {}
    await _generate(
        client,
        phases,
        settings,
        usage,
        headers=headers,
        progress=progress,
        should_continue=should_continue,
        stop=stop,
    )
    # stopped (Ctrl-C in the CLI): what was answered is still scored and saved
    interrupted = stop is not None and stop()
    unsafe = settings.unsafe_no_sandbox
    tools = await asyncio.to_thread(toolchains, unsafe=unsafe)
    iso = await asyncio.to_thread(sandbox.isolation, unsafe=unsafe)
    items_all = [item for _, _, items in phases for item in items if item.sample is not None]
    await _score(items_all, settings.score_workers, tools, progress, unsafe)

    tasks = [_task_record(item) for item in items_all]
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "kind": "variant-proxy-benchmark",
        "run_id": uuid.uuid4().hex[:12],
        "started_at": started_at,
        "finished_at": _now(),
        "duration_seconds": round(time.monotonic() - t0, 3),
        "settings": settings.as_dict(),
        "machine": machine_info(),
        "sandbox": {**iso.as_dict(), "toolchains": tools},
        "suites": {
            s.name: {
                "version": s.version,
                "class": s.cls,
                "tasks": len(s.tasks),
                "description": s.description,
                "source": s.source,
                "licensed": s.license is not None,
            }
            for s in suites
        },
        "variants": {v.name: v.info for v in variants},
        "skipped": skipped,
        "interrupted": interrupted,
        **dict(meta or {}),
    }
    doc["results"] = summarize(tasks, doc["suites"], settings.repeat, usage)
    doc["tasks"] = tasks
    return doc


def _plan(
    variants: Sequence[VariantTarget], suites: Sequence[Suite], repeat: int
) -> tuple[list[_Phase], list[dict[str, Any]]]:
    """One phase per (variant, suite), `repeat` items per task; completion suites are
    skipped for a variant known to have no fill-in-the-middle format."""
    phases: list[_Phase] = []
    skipped: list[dict[str, Any]] = []
    for variant in variants:
        for suite in suites:
            if suite.cls == "completion" and variant.fim is False:
                skipped.append(
                    {
                        "variant": variant.name,
                        "suite": suite.name,
                        "class": suite.cls,
                        "reason": "variant has no fill-in-the-middle format (variants.*.fim)",
                    }
                )
                continue
            items = []
            for task in suite.tasks:
                protocol, asked = variant.protocol_for(task)
                items += [_Item(variant.name, suite, asked, n, protocol) for n in range(repeat)]
            phases.append((variant, suite, items))
    return phases, skipped


async def _generate(
    client: httpx.AsyncClient,
    phases: Sequence[_Phase],
    settings: RunSettings,
    usage: dict[tuple[str, str], dict[str, Any] | None],
    *,
    headers: Mapping[str, str] | None,
    progress: Progress | None,
    should_continue: Callable[[], bool] | None,
    stop: Callable[[], bool] | None = None,
) -> None:
    """Send every item, phase by phase, sampling the backend's use into `usage` per phase."""
    temperature = settings.effective_temperature
    total = sum(len(items) for _, _, items in phases)
    done = 0
    gate = asyncio.Semaphore(max(1, settings.concurrency))

    async def one(item: _Item) -> None:
        nonlocal done
        async with gate:
            if should_continue is not None and not should_continue():
                raise BenchInterrupted("stopped before the run finished")
            if stop is not None and stop():
                return
            max_tokens = item.task.max_tokens
            if settings.max_tokens is not None:
                max_tokens = min(max_tokens, settings.max_tokens)
            path, body = request_body(
                item.variant,
                item.task,
                max_tokens=max_tokens,
                temperature=temperature,
                seed=item.sample_no if settings.repeat > 1 else None,
            )
            item.sample = await run_request(
                client, path, body, headers=headers, timeout=settings.request_timeout
            )
        done += 1
        if progress is not None:
            progress(done, total, f"{item.variant} {item.suite.name} {item.task.id}")

    warmed: set[str] = set()
    for variant, suite, items in phases:
        if settings.warmup and variant.name not in warmed and items:
            warmed.add(variant.name)
            path, body = request_body(variant.name, items[0].task, max_tokens=8, temperature=0.0)
            await run_request(client, path, body, headers=headers, timeout=settings.request_timeout)
        sampler = UsageSampler(variant.pid or (lambda: None))
        async with sampler:
            await asyncio.gather(*(one(item) for item in items))
        summary = sampler.summary()
        shared = _sharing(variant, [v for v, _, _ in phases])
        if summary is not None and shared:
            # one process serves several variants: its figures are the backend's, not theirs
            summary = {**summary, "shared_with": shared}
        usage[(variant.name, suite.name)] = summary


async def _score(
    items: Sequence[_Item],
    workers: int,
    tools: dict[str, str | None],
    progress: Progress | None,
    unsafe: bool = False,
) -> None:
    """Score every answer in the sandbox, `workers` at a time, in worker threads."""
    gate = asyncio.Semaphore(workers)
    scored = 0

    async def check(item: _Item) -> None:
        nonlocal scored
        assert item.sample is not None
        async with gate:
            if item.sample.error is not None and not item.sample.text:
                item.score = Score("error", item.sample.error, method="none")
            else:
                item.score = await asyncio.to_thread(
                    score, item.task, item.sample.text, tools=tools, unsafe=unsafe
                )
        scored += 1
        if progress is not None:
            progress(scored, len(items), f"scoring {item.variant} {item.task.id}")

    await asyncio.gather(*(check(item) for item in items))


def _round(x: float | None, digits: int = 6) -> float | None:
    return None if x is None else round(x, digits)


def _task_record(item: _Item) -> dict[str, Any]:
    sample = item.sample or Sample()
    result = item.score or Score("error", "not scored", method="none")
    return {
        "variant": item.variant,
        "suite": item.suite.name,
        "class": item.suite.task_class(item.task),
        "task": item.task.id,
        "language": item.task.language,
        "human_language": item.task.human_language,
        "sample": item.sample_no,
        "protocol": item.protocol,
        "status": result.status,
        "reason": result.reason,
        "method": result.method,
        "failure": result.failure,
        "error": sample.error,
        "http_status": sample.status_code,
        "served_by": sample.served_by,
        "finish_reason": sample.finish_reason,
        "ttft_seconds": _round(sample.ttft_s),
        "ttft_answer_seconds": _round(sample.ttft_answer_s),
        "ttft_reasoning_seconds": _round(sample.ttft_reasoning_s),
        "reasoning_tokens": sample.reasoning_tokens,
        "itl_seconds": _round(sample.itl_s),
        "e2e_seconds": _round(sample.e2e_s),
        "output_tokens": sample.output_tokens,
        "output_tokens_per_second": _round(sample.tokens_per_s, 3),
        "answer": sample.text[:_ANSWER_LIMIT],
        "stdout": result.stdout[:_OUTPUT_LIMIT],
        "stderr": result.stderr[-_OUTPUT_LIMIT:],
    }


def _sharing(variant: VariantTarget, others: Sequence[VariantTarget]) -> list[str]:
    """Other benchmarked variants served by the same backend process."""
    backend = variant.info.get("backend")
    if backend is None:
        return []
    names = {o.name for o in others if o.name != variant.name and o.info.get("backend") == backend}
    return sorted(names)


def _failures(records: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in records:
        if r["status"] != "passed":
            kind = str(r.get("failure") or r["status"])
            counts[kind] = counts.get(kind, 0) + 1
    return dict(sorted(counts.items()))


def _sd(values: Sequence[float]) -> float | None:
    sd = spread(values)[1]
    return None if sd is None else round(sd, 6)


def summarize(
    tasks: Sequence[Mapping[str, Any]],
    suites: Mapping[str, Mapping[str, Any]],
    repeat: int,
    usage: Mapping[tuple[str, str], dict[str, Any] | None] | None = None,
) -> list[dict[str, Any]]:
    """Per (variant, suite): pass ratio, pass@k, latency and speed percentiles, errors."""
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for record in tasks:
        groups.setdefault((record["variant"], record["suite"]), []).append(record)
    out = []
    for (variant, suite), records in groups.items():
        scored = [r for r in records if r["status"] not in ("skipped", "unverified")]
        passed = sum(1 for r in scored if r["status"] == "passed")
        per_task: dict[str, list[bool]] = {}
        for r in scored:
            per_task.setdefault(r["task"], []).append(r["status"] == "passed")
        ks = sorted({1, repeat})
        pass_k = {
            str(k): (
                round(
                    sum(pass_at_k(len(v), sum(v), k) for v in per_task.values()) / len(per_task),
                    6,
                )
                if per_task
                else None
            )
            for k in ks
        }

        def values(key: str, rs: Sequence[Mapping[str, Any]] = records) -> list[float]:
            return [float(r[key]) for r in rs if r.get(key) is not None]

        protocols = sorted({str(r["protocol"]) for r in records if r.get("protocol")})
        out.append(
            {
                "variant": variant,
                "suite": suite,
                "protocol": "+".join(protocols) or None,
                "class": suites.get(suite, {}).get("class", suite),
                "suite_version": suites.get(suite, {}).get("version"),
                "samples": len(records),
                "scored": len(scored),
                "passed": passed,
                "failed": len(scored) - passed,
                "skipped": len(records) - len(scored),
                "errors": sum(1 for r in records if r.get("error")),
                "pass_ratio": round(passed / len(scored), 6) if scored else None,
                "pass_ci95": [round(x, 6) for x in wilson(passed, len(scored))] if scored else None,
                "unverified": sum(1 for r in records if r["status"] == "unverified"),
                "failures": _failures(scored),
                "pass_at_k": pass_k,
                "ttft_seconds": _stats(values("ttft_seconds")),
                "itl_seconds": _stats(values("itl_seconds")),
                "e2e_seconds": _stats(values("e2e_seconds")),
                "output_tokens_per_second": _stats(values("output_tokens_per_second")),
                "output_tokens_per_second_sd": _sd(values("output_tokens_per_second")),
                "ttft_seconds_sd": _sd(values("ttft_seconds")),
                "ttft_answer_seconds": _stats(values("ttft_answer_seconds")),
                "ttft_reasoning_seconds": _stats(values("ttft_reasoning_seconds")),
                "reasoning_tokens": sum(int(r.get("reasoning_tokens") or 0) for r in records),
                "usage": (usage or {}).get((variant, suite)),
            }
        )
    return out
