"""Every Prometheus metric variant-proxy exports, defined in one place.

Label values come only from the config (variant, backend, class, rule
names) or from small fixed sets (endpoint, status code, error kind), never
from raw client input: a mistyped model name cannot create a new series.
`Metrics` takes a `CollectorRegistry` so each test gets a fresh one.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

__all__ = ["ENDPOINTS", "LATENCY_BUCKETS", "Metrics"]

#: Milliseconds (autocomplete) to minutes (a big model loading, long answers).
LATENCY_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0,
    120.0, 300.0, 600.0,
)  # fmt: skip
FAST_BUCKETS = (
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05,
)  # fmt: skip
ENDPOINTS = frozenset({"chat", "completions", "embeddings", "other"})


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        p = "variant_proxy_"
        self.requests = Counter(
            p + "requests",
            "Requests answered, by endpoint, class, variant and HTTP status.",
            ["endpoint", "class", "variant", "status"],
            registry=r,
        )
        self.request_duration = Histogram(
            p + "request_duration_seconds",
            "End-to-end request duration as the client sees it.",
            ["endpoint", "variant"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            p + "time_to_first_token_seconds",
            "Time from request to the first byte of the backend's answer.",
            ["endpoint", "variant"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
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
        self.in_flight = Gauge(
            p + "in_flight_requests",
            "Requests being relayed now, by variant.",
            ["variant"],
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
        self.backend_up = Gauge(
            p + "backend_up",
            "1 when the backend's last health probe succeeded.",
            ["backend"],
            registry=r,
        )
        self.config_info = Info(p + "config", "The loaded config file and its hash.", registry=r)
        self.reloads = Counter(
            p + "config_reloads", "Config reloads, by result.", ["result"], registry=r
        )
