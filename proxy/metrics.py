"""Every Prometheus metric variant-proxy exports, defined in one place.

Label values come only from the config (variant, backend, class, rule
names) or from small fixed sets (endpoint, status code, error kind, GPU
index), never from raw client input: a mistyped model name cannot create a
new series. The one exception is `variant_proxy_pin_info`, whose `observed`
label is what the backend reports; `Metrics.set_pin` keeps exactly one such
series per variant.

`Metrics` takes a `CollectorRegistry` so each test gets a fresh one.
Resource readings (`variant_proxy_backend_*`, `_system_*`, `_gpu_*`) are
defined here but written by `proxy.resources.ResourceSampler`, off the
request path; token and stream timings by `proxy.streammeter.observe`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = [
    "ENDPOINT_LABELS",
    "FAST_BUCKETS",
    "INTER_TOKEN_BUCKETS",
    "LATENCY_BUCKETS",
    "OVERHEAD_BUCKETS",
    "TOKENS_PER_SECOND_BUCKETS",
    "BenchGauges",
    "Metrics",
    "SampledCounter",
]

#: Milliseconds (autocomplete) to minutes (a big model loading, long answers).
LATENCY_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0,
    120.0, 300.0, 600.0,
)  # fmt: skip
#: The gap between two tokens: ~2 ms (a small model on a GPU) to seconds (a 70B on a CPU).
INTER_TOKEN_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0,
)  # fmt: skip
#: Decode speed: 1 token/s (a big model on a laptop CPU) to thousands (tiny model, fast GPU).
TOKENS_PER_SECOND_BUCKETS = (
    1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 75.0, 100.0, 150.0, 200.0, 300.0,
    500.0, 1000.0, 2000.0,
)  # fmt: skip
#: Time the proxy itself adds: 0.1 ms to a second.
OVERHEAD_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
)  # fmt: skip
FAST_BUCKETS = (
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05,
)  # fmt: skip
#: the values of the `endpoint` label: the relayed endpoints (`runtime.ENDPOINTS`), no others
ENDPOINT_LABELS = frozenset({"chat", "completions", "embeddings", "responses"})

_PIN_VALUE_LIMIT = 80
#: every metric name starts with this
PREFIX = "variant_proxy_"


class SampledCounter(Collector):
    """A counter whose value is read from elsewhere rather than incremented.

    psutil reports a process's cumulative CPU seconds; re-exporting that
    reading as a counter (not a gauge) lets `rate()` work. A reading that
    goes down (the backend restarted) is a counter reset, which `rate()`
    handles.
    """

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        registry: CollectorRegistry,
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self._values: dict[tuple[str, ...], float] = {}
        self._lock = threading.Lock()
        registry.register(self)

    def set(self, labelvalues: Sequence[str], value: float) -> None:
        key = tuple(labelvalues)
        if len(key) != len(self.labelnames):
            raise ValueError(f"{self.name}: expected labels {self.labelnames}, got {key}")
        with self._lock:
            self._values[key] = max(0.0, value)

    def remove(self, labelvalues: Sequence[str]) -> None:
        with self._lock:
            self._values.pop(tuple(labelvalues), None)

    def value(self, labelvalues: Sequence[str]) -> float | None:
        with self._lock:
            return self._values.get(tuple(labelvalues))

    def describe(self) -> Iterable[Metric]:
        yield CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)

    def collect(self) -> Iterable[Metric]:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        with self._lock:
            items = list(self._values.items())
        for key, value in items:
            family.add_metric(list(key), value)
        yield family


class Metrics:
    """All metrics, registered on one registry (a fresh one unless given)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self._traffic(r)
        self._latency(r)
        self._errors(r)
        self._backends(r)
        self._resources(r)
        self._system_resources(r)
        self._swapping(r)
        #: the benchmark's gauges (written by the bench scheduler)
        self.bench = BenchGauges(r)

    def _traffic(self, r: CollectorRegistry) -> None:
        p = PREFIX
        self.requests = Counter(
            p + "requests",
            "Requests answered, by endpoint, class, variant and HTTP status.",
            ["endpoint", "class", "variant", "status"],
            registry=r,
        )
        self.in_flight = Gauge(
            p + "in_flight_requests",
            "Requests being relayed now, by variant.",
            ["variant"],
            multiprocess_mode="livesum",
            registry=r,
        )
        self.client_disconnects = Counter(
            p + "client_disconnects",
            "Requests whose client went away before the answer was complete.",
            ["variant"],
            registry=r,
        )
        self.classifications = Counter(
            p + "classifications",
            "Requests classified, by class and the rule that decided.",
            ["class", "rule"],
            registry=r,
        )
        self.classification_seconds = Histogram(
            p + "classification_seconds",
            "Time spent classifying one request.",
            buckets=FAST_BUCKETS,
            registry=r,
        )

    def _latency(self, r: CollectorRegistry) -> None:
        p = PREFIX
        self.request_duration = Histogram(
            p + "request_duration_seconds",
            "End-to-end request duration as the client sees it.",
            ["endpoint", "variant"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            p + "time_to_first_token_seconds",
            "Time from the request's arrival to the first content token of a streamed answer.",
            ["endpoint", "variant"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.inter_token = Histogram(
            p + "inter_token_latency_seconds",
            "Mean gap between two token events of one streamed answer (one sample per stream).",
            ["endpoint", "variant"],
            buckets=INTER_TOKEN_BUCKETS,
            registry=r,
        )
        self.tokens_per_second = Histogram(
            p + "output_tokens_per_second",
            "Decode speed of one streamed answer: tokens after the first, divided by the time "
            "from the first to the last token.",
            ["endpoint", "variant"],
            buckets=TOKENS_PER_SECOND_BUCKETS,
            registry=r,
        )
        self.prompt_tokens = Counter(
            p + "prompt_tokens",
            "Prompt tokens, as the backend's usage reports them.",
            ["variant"],
            registry=r,
        )
        self.completion_tokens = Counter(
            p + "completion_tokens",
            "Output tokens: the backend's usage when reported, else counted token events.",
            ["variant"],
            registry=r,
        )
        self.overhead = Histogram(
            p + "overhead_seconds",
            "Time a request spent in the proxy outside waiting on the backend.",
            ["endpoint"],
            buckets=OVERHEAD_BUCKETS,
            registry=r,
        )

    def _errors(self, r: CollectorRegistry) -> None:
        p = PREFIX
        self.upstream_errors = Counter(
            p + "upstream_errors",
            "Backend failures, by backend and kind (unreachable, timeout, status, protocol).",
            ["backend", "kind"],
            registry=r,
        )
        self.fallbacks = Counter(
            p + "fallbacks",
            "Requests moved to the next candidate before their first byte.",
            ["from_variant", "to_variant"],
            registry=r,
        )
        self.queue_depth = Gauge(
            p + "queue_depth",
            "Requests waiting for a slot of a backend at max_concurrency.",
            ["backend"],
            multiprocess_mode="livesum",
            registry=r,
        )
        self.queue_wait = Histogram(
            p + "queue_wait_seconds",
            "Time a request waited for a free slot of its backend.",
            ["backend"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )

    def _backends(self, r: CollectorRegistry) -> None:
        p = PREFIX
        self.backend_up = Gauge(
            p + "backend_up",
            "1 when the backend's last health probe succeeded.",
            ["backend"],
            multiprocess_mode="max",
            registry=r,
        )
        self.backend_stopped = Gauge(
            p + "backend_stopped",
            "1 while a managed backend is stopped on purpose (idle_ttl, a group swap, an admin "
            "unload): down, but not failing.",
            ["backend"],
            multiprocess_mode="max",
            registry=r,
        )
        self.pin_ok = Gauge(
            p + "pin_ok",
            "1 when the model a variant's backend serves matches the variant's pin, else 0.",
            ["variant"],
            multiprocess_mode="min",
            registry=r,
        )
        self.pin_info = Gauge(
            p + "pin_info",
            "Always 1; the labels carry a pinned variant's expected and observed identity.",
            ["variant", "expected", "observed"],
            multiprocess_mode="max",
            registry=r,
        )
        self._pin_labels: dict[str, tuple[str, str]] = {}
        self._pin_lock = threading.Lock()
        self.config_info = Info(p + "config", "The loaded config file and its hash.", registry=r)
        self.reloads = Counter(
            p + "config_reloads", "Config reloads, by result.", ["result"], registry=r
        )

    def _resources(self, r: CollectorRegistry) -> None:
        p = PREFIX
        self.backend_cpu_seconds = SampledCounter(
            p + "backend_cpu_seconds",
            "CPU time (user + system) of a backend's process and its children.",
            ["backend"],
            registry=r,
        )
        self.backend_cpu_percent = Gauge(
            p + "backend_cpu_percent",
            "CPU use of a backend's process tree over the last sampling interval (100 = one core).",
            ["backend"],
            multiprocess_mode="max",
            registry=r,
        )
        self.backend_memory = Gauge(
            p + "backend_resident_memory_bytes",
            "Resident memory of a backend's process and its children.",
            ["backend"],
            multiprocess_mode="max",
            registry=r,
        )
        self.backend_threads = Gauge(
            p + "backend_threads",
            "Threads of a backend's process and its children.",
            ["backend"],
            multiprocess_mode="max",
            registry=r,
        )
        self.backend_processes = Gauge(
            p + "backend_processes",
            "Processes in a backend's process tree (0 when no process was found).",
            ["backend"],
            multiprocess_mode="max",
            registry=r,
        )

    def _swapping(self, r: CollectorRegistry) -> None:
        """Loading managed backends and swapping group members (`proxy.swapper`)."""
        p = PREFIX
        self.swaps = Counter(
            p + "swaps",
            "Members a group loaded on demand (after stopping others when needed), by group.",
            ["group"],
            registry=r,
        )
        self.swap_seconds = Histogram(
            p + "swap_seconds",
            "From a request needing a cold group member to that member answering health "
            "checks: waiting for room, stopping others, loading.",
            ["group"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.swap_wait = Histogram(
            p + "swap_wait_seconds",
            "Time one request waited for its group member to be loaded (room made, started).",
            ["group"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.evictions = Counter(
            p + "evictions",
            "Group members stopped to make room (max_loaded, memory) or by an admin (admin).",
            ["group", "reason"],
            registry=r,
        )
        self.backend_load_seconds = Histogram(
            p + "backend_load_seconds",
            "Time a managed backend took from spawn to its first healthy answer.",
            ["backend"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )

    def _system_resources(self, r: CollectorRegistry) -> None:
        p = PREFIX
        self.system_cpu_percent = Gauge(
            p + "system_cpu_percent",
            "System-wide CPU use over the last sampling interval (100 = all cores busy).",
            multiprocess_mode="max",
            registry=r,
        )
        self.system_memory_used = Gauge(
            p + "system_memory_used_bytes",
            "System memory in use (total minus available).",
            multiprocess_mode="max",
            registry=r,
        )
        self.system_memory_total = Gauge(
            p + "system_memory_total_bytes",
            "Total system memory.",
            multiprocess_mode="max",
            registry=r,
        )
        self.gpu_utilization = Gauge(
            p + "gpu_utilization_ratio",
            "GPU busy ratio over NVML's last sample period (0-1).",
            ["gpu"],
            multiprocess_mode="max",
            registry=r,
        )
        self.gpu_memory_used = Gauge(
            p + "gpu_memory_used_bytes",
            "GPU memory in use.",
            ["gpu"],
            multiprocess_mode="max",
            registry=r,
        )
        self.gpu_memory_total = Gauge(
            p + "gpu_memory_total_bytes",
            "GPU memory in total.",
            ["gpu"],
            multiprocess_mode="max",
            registry=r,
        )
        self.backend_gpu_memory = Gauge(
            p + "backend_gpu_memory_bytes",
            "GPU memory used by a backend's process tree, summed over GPUs.",
            ["backend"],
            multiprocess_mode="max",
            registry=r,
        )

    def set_pin(self, variant: str, *, expected: str, observed: str, ok: bool) -> None:
        """Record a pin check, keeping exactly one `pin_info` series per variant."""
        expected = expected[:_PIN_VALUE_LIMIT]
        observed = observed[:_PIN_VALUE_LIMIT]
        with self._pin_lock:
            previous = self._pin_labels.get(variant)
            if previous is not None and previous != (expected, observed):
                try:
                    self.pin_info.remove(variant, *previous)
                except KeyError:
                    pass
            self._pin_labels[variant] = (expected, observed)
            self.pin_info.labels(variant, expected, observed).set(1)
            self.pin_ok.labels(variant).set(1 if ok else 0)

    def clear_pin(self, variant: str) -> None:
        """Forget a variant's pin series (it was removed or unpinned on reload)."""
        with self._pin_lock:
            previous = self._pin_labels.pop(variant, None)
            for gauge, labels in (
                (self.pin_info, (variant, *previous) if previous else None),
                (self.pin_ok, (variant,)),
            ):
                if labels is None:
                    continue
                try:
                    gauge.remove(*labels)
                except KeyError:
                    pass


class BenchGauges:
    """The latest benchmark figures, by variant and suite.

    Part of `Metrics` (`metrics.bench`), so the daemon's scheduler writes into the
    registry `/metrics` serves; built alone on a fresh registry where no proxy runs.
    Written by `proxy.bench.scheduler.export`, which reads the result document.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r, p = self.registry, PREFIX + "bench_"
        labels = ["variant", "suite"]
        self.pass_ratio = Gauge(
            p + "pass_ratio",
            "Share of a benchmark suite's cases a variant passed in its last run.",
            labels,
            multiprocess_mode="max",
            registry=r,
        )
        self.ttft = Gauge(
            p + "ttft_seconds",
            "Median time to first token in a variant's last benchmark run.",
            labels,
            multiprocess_mode="max",
            registry=r,
        )
        self.tokens_per_second = Gauge(
            p + "output_tokens_per_second",
            "Median decode speed in a variant's last benchmark run.",
            labels,
            multiprocess_mode="max",
            registry=r,
        )
        self.last_run = Gauge(
            p + "last_run_timestamp_seconds",
            "Unix time a variant's last benchmark run finished.",
            labels,
            multiprocess_mode="max",
            registry=r,
        )

        # the evidence routing uses: pooled over every kept run, per variant and class
        evidence = ["variant", "class"]
        self.pass_lower = Gauge(
            p + "pass_ratio_lower_bound",
            "95% Wilson lower bound of a variant's pass ratio, pooled over kept runs.",
            evidence,
            multiprocess_mode="max",
            registry=r,
        )
        self.pass_upper = Gauge(
            p + "pass_ratio_upper_bound",
            "95% Wilson upper bound of a variant's pass ratio, pooled over kept runs.",
            evidence,
            multiprocess_mode="max",
            registry=r,
        )
        self.samples = Gauge(
            p + "scored_samples",
            "Scored benchmark samples behind a variant's pooled pass ratio.",
            evidence,
            multiprocess_mode="max",
            registry=r,
        )

    def clear(self) -> None:
        """Drop every series (a new run replaces the previous one's figures)."""
        for gauge in (self.pass_ratio, self.ttft, self.tokens_per_second, self.last_run):
            gauge.clear()

    def set_evidence(self, figures: dict[str, dict[str, dict[str, Any]]]) -> None:
        """Replace the pooled evidence series (`proxy.bench.ranking.figures`)."""
        for gauge in (self.pass_lower, self.pass_upper, self.samples):
            gauge.clear()
        for variant, per_class in figures.items():
            for cls, fig in per_class.items():
                if fig.get("lower") is None:
                    continue
                self.pass_lower.labels(variant, cls).set(float(fig["lower"]))
                self.pass_upper.labels(variant, cls).set(float(fig["upper"]))
                self.samples.labels(variant, cls).set(float(fig["scored"]))
