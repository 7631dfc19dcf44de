"""Benchmarking variants: speed, accuracy (answers executed in a sandbox) and resource use.

Modules, from pure to I/O:

* `suite` — the suite file format, loading, extracting code from answers;
* `ranking` — ordering a route's candidates by benchmark evidence;
* `report` — Markdown / HTML / terminal reports and `--compare` regressions;
* `scoring`, `sandbox` — running candidate code in a limited, isolated process;
* `client`, `asgi`, `usage` — one timed streaming request; the in-process transport;
  the backend's CPU / memory / GPU use;
* `runner` — a whole run and its result document (`schema: 1`);
* `cli` — `variant-proxy bench`; `scheduler` — continuous runs inside the daemon.
"""

from __future__ import annotations

from .ranking import figures, rank
from .runner import SCHEMA, RunSettings, VariantTarget, run_benchmark
from .scheduler import BenchmarkConfig, BenchMetrics, BenchScheduler
from .suite import BUILTIN_SUITES, Suite, SuiteError, Task, load_suite

__all__ = [
    "BUILTIN_SUITES",
    "SCHEMA",
    "BenchMetrics",
    "BenchScheduler",
    "BenchmarkConfig",
    "RunSettings",
    "Suite",
    "SuiteError",
    "Task",
    "VariantTarget",
    "figures",
    "load_suite",
    "rank",
    "run_benchmark",
]
