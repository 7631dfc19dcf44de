"""Label values come from the config and small fixed sets, never from client input.

A real-socket proxy gets well-formed traffic mixed with random model names,
random paths, random headers and broken bodies; afterwards every label value
in the registry must be a config name or one of a few fixed values, and a
second round of different random junk must not add a single series.
"""

from __future__ import annotations

import random
import string
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from prometheus_client.utils import floatToGoString

from proxy import metrics as metrics_module
from proxy.app import create_app
from proxy.config import CLASSES, parse_config
from proxy.metrics import ENDPOINT_LABELS, Metrics
from proxy.runtime import ENDPOINTS
from tests.helpers.config import make_config
from tests.helpers.fakeupstream import FakeUpstream, run_server

CFG = make_config("http://placeholder")
VARIANTS = set(CFG["variants"])
BACKENDS = set(CFG["backends"])
ALLOWED: dict[str, set[str]] = {
    "endpoint": set(ENDPOINT_LABELS),
    "class": set(CLASSES) | {"direct", "embeddings", "none"},
    "variant": VARIANTS | {"none"},
    "from_variant": VARIANTS,
    "to_variant": VARIANTS,
    "backend": BACKENDS,
    "result": {"ok", "error"},
    "le": {"+Inf"}
    | {
        floatToGoString(bound)
        for name in dir(metrics_module)
        if name.endswith("_BUCKETS")
        for bound in getattr(metrics_module, name)
    },
}
#: Labels whose values are fixed by code, not config: bounded, but listed loosely.
BOUNDED = {"status": 20, "kind": 12, "rule": 40, "source": 1, "sha256": 1, "gpu": 16}


@pytest.fixture
def proxy(fake_server: tuple[FakeUpstream, str]) -> Iterator[tuple[str, Metrics]]:
    _, upstream = fake_server
    metrics = Metrics()
    app = create_app(parse_config(make_config(upstream)), metrics=metrics)
    with run_server(app) as url:
        yield url, metrics


def junk(rng: random.Random, n: int = 12) -> str:
    alphabet = string.ascii_letters + string.digits + "-_./:@ éü{}\"'\\"
    return "zz" + "".join(rng.choice(alphabet) for _ in range(n))


def chat(model: Any, **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "hello"}], **extra}


def traffic(url: str, rng: random.Random) -> list[str]:
    """Valid requests of every kind plus random junk; returns the junk strings used."""
    used: list[str] = []
    with httpx.Client(base_url=url, timeout=20) as client:
        ok = [
            ("/v1/chat/completions", chat("instruct")),
            ("/v1/chat/completions", chat("ci", stream=True, fake={"chunks": 3})),
            (
                "/v1/chat/completions",
                chat("auto", stream=True, stream_options={"include_usage": True}),
            ),
            ("/v1/chat/completions", chat("complex")),  # ghost is dead: falls back to big
            ("/v1/chat/completions", chat("instruct", fake={"status": 500})),
            ("/v1/completions", {"model": "code", "prompt": "def f(", "stream": True}),
            (
                "/v1/completions",
                {"model": "auto", "prompt": "<fim_prefix>a<fim_suffix>b<fim_middle>"},
            ),
            ("/v1/embeddings", {"model": "big", "input": "x"}),
            ("/v1/chat/completions", chat("instruct", stream=True, fake={"die_after": 1})),
        ]
        for path, body in ok:
            client.post(path, json=body)
        for _ in range(40):
            word = junk(rng)
            used.append(word)
            endpoint = rng.choice(["/v1/chat/completions", "/v1/completions", "/v1/embeddings"])
            body: dict[str, Any] = {"model": word, "messages": [{"role": "user", "content": "x"}]}
            body |= {"prompt": "x", "input": "x", "stream": rng.random() < 0.5}
            client.post(endpoint, json=body, headers={"x-request-id": word.encode().hex()})
            client.post("/v1/" + word.replace(" ", ""), json=body)
            client.get("/" + word.replace(" ", "") + "/metrics")
            client.post(endpoint, content=word.encode())  # not JSON
            client.post(endpoint, json={"model": [word], "messages": "x"})
            client.post("/route/explain", params={"endpoint": word}, json=body)
            client.request(rng.choice(["PUT", "DELETE", "PATCH"]), endpoint, json=body)
    return used


def series(metrics: Metrics) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    out = set()
    for family in metrics.registry.collect():
        for sample in family.samples:
            out.add((sample.name, tuple(sorted(sample.labels.items()))))
    return out


def test_label_values_stay_bounded(proxy: tuple[str, Metrics]) -> None:
    url, metrics = proxy
    rng = random.Random(6)
    used = traffic(url, rng)
    first = series(metrics)
    values: dict[str, set[str]] = {}
    for _, labels in first:
        for key, value in labels:
            values.setdefault(key, set()).add(value)
    for key, seen in values.items():
        if key in ALLOWED:
            assert seen <= ALLOWED[key], (key, seen - ALLOWED[key])
        else:
            assert key in BOUNDED, f"unexpected label {key!r}: {sorted(seen)[:5]}"
            assert len(seen) <= BOUNDED[key], (key, seen)
    assert all(s.isdigit() and 100 <= int(s) <= 599 for s in values["status"])
    everything = " ".join(v for seen in values.values() for v in seen)
    for word in used:
        assert word not in everything
    assert {"instruct", "big", "code"} <= values["variant"]
    assert "none" in values["variant"]  # unknown models are counted, under "none"

    used += traffic(url, random.Random(7))
    second = series(metrics)
    assert second == first, sorted(second - first)[:10]


def test_endpoint_labels_are_the_relayed_endpoints() -> None:
    assert set(ENDPOINTS) == ENDPOINT_LABELS
