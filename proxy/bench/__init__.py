"""Benchmarking variants: speed, accuracy (answers executed in a sandbox) and resource use.

Modules, from pure to I/O:

* `suite` — the suite file format, loading, extracting code from answers (the shipped
  suites are one per request class, `classify.CLASSES`);
* `stats` — Wilson intervals, the exact McNemar test, spreads;
* `ranking` — pooling evidence over runs and ordering a route's candidates by it;
* `report`, `history` — Markdown / HTML / terminal reports, `--compare` regressions,
  and the page of figures over runs;
* `harness` — the check program per language and the success-token verdict (a pass
  is decided by the harness, never by an exit status);
* `scoring`, `sandbox`, `bwrap` — running candidate code inside bubblewrap with
  resource limits;
* `client`, `asgi`, `usage` — one timed streaming request (parsed by `proxy.sse`); the
  in-process transport; the backend's CPU / memory / GPU use;
* `runner` — a whole run and its result document (`schema: 1`);
* `running` — what the bench reads from a running proxy, as `Protocol`s;
* `scheduler` — continuous runs inside the daemon.

The bench depends on the config, metrics, pinning and resources modules, never on the
web layer (`proxy.app`, `proxy.service`): the daemon hands it the app as an ASGI
callable and its proxy as a `running.RunningProxy`. The `variant-proxy bench` command,
which may start a proxy, lives with the other commands in `proxy.cli.bench`; its
config section is `proxy.config.BenchmarkConfig` and its gauges `Metrics.bench`.
"""

from __future__ import annotations

from .ranking import figures, rank
from .runner import SCHEMA, RunSettings, VariantTarget, run_benchmark
from .running import RunningProxy
from .scheduler import BenchScheduler
from .suite import Suite, Task, load_suite

__all__ = [
    "SCHEMA",
    "BenchScheduler",
    "RunSettings",
    "RunningProxy",
    "Suite",
    "Task",
    "VariantTarget",
    "figures",
    "load_suite",
    "rank",
    "run_benchmark",
]
