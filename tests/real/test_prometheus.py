"""The dashboard and the alert rules, proven on a real Prometheus.

The slow test serves real traffic through a real-socket proxy, lets a real
`prometheus` scrape it every second, then checks that every PromQL
expression in `grafana/dashboards/variant-proxy.json` and
`grafana/alerts.yml` is accepted and that the core panels return data.
`promtool` checks and unit-tests the alert rules. Without the binaries the
tests skip locally and fail under `make test` (VARIANT_PROXY_REQUIRE_REAL).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml

from proxy.app import create_app
from proxy.config import parse_config
from proxy.metrics import Metrics
from proxy.resources import ResourceSampler, loopback_port
from tests.helpers.config import make_config
from tests.helpers.fakeupstream import FakeUpstream, free_port, run_server

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "variant-proxy.json"
ALERTS = GRAFANA / "alerts.yml"

#: Panels that must show data after the traffic below (by title).
CORE_PANELS = (
    "Requests/s by class",
    "Requests/s by variant",
    "Time to first token p50/p95 by variant",
    "End-to-end latency p50/p95/p99 by variant",
    "Output tokens/s by variant",
    "Error ratio (5xx) by variant",
    "Upstream errors/s by backend and kind",
    "Fallbacks/s",
    "Backend up",
    # fed by the ResourceSampler this test runs on the proxy's registry
    "Backend CPU cores (from CPU seconds)",
    "Backend resident memory",
    "System memory",
    "Proxy process CPU and memory",
)
#: Core panels whose metric the app does not record yet (panel → metric). Until the
#: metric has samples in the proxy's registry the panel is only syntax-checked; once
#: app.py records it, it must show data. Delete entries as the wiring lands.
PENDING_WIRING: dict[str, str] = {}


def require_binaries() -> tuple[str, str]:
    prometheus, promtool = shutil.which("prometheus"), shutil.which("promtool")
    if prometheus is None or promtool is None:
        why = (
            "needs the prometheus and promtool binaries: "
            "apt-get install -y prometheus (`make system-deps`)"
        )
        if os.environ.get("VARIANT_PROXY_REQUIRE_REAL"):
            pytest.fail(why)
        pytest.skip(why)
    return prometheus, promtool


# -- reading the dashboard and the rules ---------------------------------------------------------


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def all_panels(dash: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for panel in dash["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))  # a collapsed row keeps its panels inside
    return out


def panel_queries(dash: dict[str, Any]) -> dict[str, list[str]]:
    return {
        p["title"]: [t["expr"] for t in p.get("targets", [])]
        for p in all_panels(dash)
        if p["type"] != "row"
    }


def variable_queries(dash: dict[str, Any]) -> dict[str, str]:
    """Grafana's `label_values(metric, label)` as plain PromQL: `count by (label) (metric)`."""
    out = {}
    for var in dash["templating"]["list"]:
        if var["type"] != "query":
            continue
        query = var["query"] if isinstance(var["query"], str) else var["query"]["query"]
        m = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", query.strip())
        assert m, f"variable {var['name']}: unsupported query {query!r}"
        out[var["name"]] = f"count by ({m.group(2)}) ({m.group(1)})"
    return out


def to_promql(expr: str) -> str:
    for var in ("variant", "class"):
        expr = expr.replace("${" + var + "}", ".*").replace("$" + var, ".*")
    return expr.replace("$__rate_interval", "1m").replace("${datasource}", "")


def alert_rules() -> dict[str, str]:
    data = yaml.safe_load(ALERTS.read_text())
    return {r["alert"]: r["expr"] for g in data["groups"] for r in g["rules"] if "alert" in r}


# -- fast checks ---------------------------------------------------------------------------------


def test_dashboard_shape() -> None:
    dash = dashboard()
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for name in ("variant", "class"):
        assert variables[name]["datasource"]["uid"] == "${datasource}"
        assert variables[name]["includeAll"] and variables[name]["allValue"] == ".*"
    rows = [p["title"] for p in dash["panels"] if p["type"] == "row"]
    for word in ("Traffic", "Latency", "Errors", "Pins", "resources", "overhead", "Benchmark"):
        assert any(word in row for row in rows), word
    ids = [p["id"] for p in all_panels(dash)]
    assert len(ids) == len(set(ids))
    titles = [p["title"] for p in all_panels(dash) if p["type"] != "row"]
    assert len(titles) == len(set(titles))
    for panel in all_panels(dash):
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]
    assert set(CORE_PANELS) <= set(titles)


def test_dashboard_and_rules_name_only_real_metrics() -> None:
    """Every variant_proxy_* name used is one `Metrics` defines: no typo shows an empty panel."""
    defined = set()
    for family in Metrics().registry.collect():
        for suffix in ("", "_total", "_bucket", "_sum", "_count", "_info"):
            defined.add(family.name + suffix)
    text = json.dumps(panel_queries(dashboard())) + ALERTS.read_text()
    text += json.dumps(variable_queries(dashboard()))
    used = set(re.findall(r"variant_proxy_[a-z_]+", text))
    assert used and used <= defined, sorted(used - defined)


def test_promtool_checks_and_tests_the_rules() -> None:
    _, promtool = require_binaries()
    for args in (
        ["check", "rules", str(ALERTS)],
        ["test", "rules", str(GRAFANA / "alerts.test.yml")],
        ["check", "config", str(GRAFANA / "prometheus.yml")],
    ):
        done = subprocess.run([promtool, *args], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
    tested = set(re.findall(r"alertname: (\w+)", (GRAFANA / "alerts.test.yml").read_text()))
    assert tested == set(alert_rules())


def test_resource_sampler_finds_loopback_backends(
    fake_server: tuple[FakeUpstream, str], tmp_path: Path
) -> None:
    _, upstream = fake_server
    metrics = Metrics()
    pid_file = tmp_path / "backend.pid"
    pid_file.write_text(f"{os.getpid()}\n")
    sampler = ResourceSampler(
        metrics,
        {
            "listening": upstream,
            "managed": "http://127.0.0.1:1",
            "pidfile": "http://127.0.0.1:2",
            "remote": "http://10.255.0.1:8080",
            "nothing": "http://127.0.0.1:9",
        },
        pids=lambda: {"managed": os.getpid(), "remote": None},
        pid_files={"pidfile": str(pid_file)},
        gpu=False,
    )
    sampler.sample()
    sum(i * i for i in range(200_000))  # burn some CPU between samples
    sampler.sample()
    reg = metrics.registry
    for name in ("listening", "managed", "pidfile"):
        labels = {"backend": name}
        assert reg.get_sample_value("variant_proxy_backend_processes", labels) >= 1
        assert reg.get_sample_value("variant_proxy_backend_resident_memory_bytes", labels) > 1e6
        assert reg.get_sample_value("variant_proxy_backend_threads", labels) >= 1
        assert reg.get_sample_value("variant_proxy_backend_cpu_seconds_total", labels) > 0
        assert reg.get_sample_value("variant_proxy_backend_cpu_percent", labels) is not None
    for name in ("remote", "nothing"):
        assert reg.get_sample_value("variant_proxy_backend_processes", {"backend": name}) == 0
        cpu = reg.get_sample_value("variant_proxy_backend_cpu_seconds_total", {"backend": name})
        assert cpu is None
    total = reg.get_sample_value("variant_proxy_system_memory_total_bytes")
    used = reg.get_sample_value("variant_proxy_system_memory_used_bytes")
    assert total is not None and used is not None and 0 < used < total
    assert reg.get_sample_value("variant_proxy_system_cpu_percent") is not None
    assert reg.get_sample_value("process_resident_memory_bytes") is not None
    ResourceSampler(metrics, {}, gpu=False)  # a second sampler doesn't re-register
    # a backend removed from the config loses its series
    sampler.sample({"listening": upstream}, {})
    assert reg.get_sample_value("variant_proxy_backend_processes", {"backend": "managed"}) is None
    assert loopback_port("http://localhost") == 80
    assert loopback_port("https://[::1]:8443/v1") == 8443
    assert loopback_port("http://example.com:8080") is None


# -- the real Prometheus -------------------------------------------------------------------------


def client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=20)


def serve_traffic(url: str, first: bool) -> None:
    """Streaming and not, several classes, errors and (the first time) a fallback."""
    with client(url) as c:
        _serve(c, first)


def _serve(c: openai.OpenAI, first: bool) -> None:
    msgs = [{"role": "user", "content": "write hello world in python"}]
    c.chat.completions.create(model="instruct", messages=msgs)
    for model in ("instruct", "auto", "complex"):
        stream = c.chat.completions.create(
            model=model,
            messages=msgs,
            stream=True,
            stream_options={"include_usage": True},
            extra_body={"fake": {"chunks": 8, "chunk_delay": 0.01}},
        )
        assert list(stream)
    c.completions.create(model="code", prompt="def f(", max_tokens=4)
    c.completions.create(model="completion", prompt="<fim_prefix>a<fim_suffix>b<fim_middle>")
    for chunk in c.completions.create(
        model="code", prompt="def f(", stream=True, extra_body={"fake": {"chunks": 6}}
    ):
        assert chunk
    raw = c.chat.completions.with_raw_response.create(model="complex", messages=msgs)
    assert raw.headers["x-route-variant"] == "big"
    if first:  # later the dead backend is known to be down and skipped: no fallback
        assert raw.headers["x-route-fallback-from"] == "ghost"
    with pytest.raises(openai.NotFoundError):
        c.chat.completions.create(model="no-such-model", messages=msgs)
    with pytest.raises(openai.APIStatusError) as info:
        c.chat.completions.create(
            model="instruct", messages=msgs, extra_body={"fake": {"status": 500}}
        )
    assert info.value.status_code == 502


class PromAPI:
    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=10, trust_env=False)

    def query(self, expr: str) -> list[dict[str, Any]]:
        r = self.http.get("/api/v1/query", params={"query": expr})
        body = r.json()
        assert r.status_code == 200 and body["status"] == "success", (expr, body)
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def finite(self, expr: str) -> list[dict[str, Any]]:
        out = []
        for series in self.query(expr):
            value = float(series["value"][1])
            if not math.isnan(value) and not math.isinf(value):
                out.append(series)
        return out


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real Prometheus on a free loopback port; yields its URL and config path."""
    binary, _ = require_binaries()
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text("global: {scrape_interval: 1s, evaluation_interval: 1s}\n")
    log = (tmp_path / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--web.enable-lifecycle",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, (tmp_path / "prometheus.log").read_text()
            try:
                if httpx.get(url + "/-/ready", timeout=1, trust_env=False).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "prometheus did not become ready"
            time.sleep(0.1)
        yield url, config
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def poll(check: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.5)


@pytest.mark.slow
def test_dashboard_and_alerts_on_real_prometheus(
    fake_server: tuple[FakeUpstream, str], prometheus: tuple[str, Path]
) -> None:
    prom_url, prom_config = prometheus
    _, upstream = fake_server
    cfg = make_config(upstream)
    metrics = Metrics()
    sampler = ResourceSampler(
        metrics, {name: b.get("url", "") for name, b in cfg["backends"].items()}, gpu=False
    )
    stop = threading.Event()

    def sample_loop() -> None:
        while not stop.is_set():
            sampler.sample()
            stop.wait(0.5)

    sampling = threading.Thread(target=sample_loop, daemon=True)
    sampling.start()
    with contextlib.ExitStack() as stack:
        stack.callback(sampling.join, 5)
        stack.callback(stop.set)
        with run_server(create_app(parse_config(cfg), metrics=metrics)) as proxy_url:
            serve_traffic(proxy_url, first=True)
            target = proxy_url.removeprefix("http://")
            prom_config.write_text(
                yaml.safe_dump(
                    {
                        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                        "rule_files": [str(ALERTS)],
                        "scrape_configs": [
                            {
                                "job_name": "variant-proxy",
                                "metrics_path": "/metrics",
                                "static_configs": [{"targets": [target]}],
                            }
                        ],
                    }
                )
            )
            api = PromAPI(prom_url)
            stack.callback(api.http.close)
            reload = httpx.post(prom_url + "/-/reload", timeout=10, trust_env=False)
            assert reload.status_code == 200, reload.text
            up = poll(lambda: api.finite('up{job="variant-proxy"} == 1'), 20)
            assert up, "prometheus never scraped the proxy"
            time.sleep(2)  # a few scrapes before the second round, so rate() sees it
            serve_traffic(proxy_url, first=False)
            check_on_prometheus(api, metrics)


def recorded(metrics: Metrics, histogram: str) -> bool:
    """Whether the proxy has observed anything into a histogram yet."""
    return any(
        sample.value > 0
        for family in metrics.registry.collect()
        if family.name == histogram
        for sample in family.samples
        if sample.name == histogram + "_count"
    )


def check_on_prometheus(api: PromAPI, metrics: Metrics) -> None:
    dash = dashboard()
    queries = panel_queries(dash)

    # 1. every expression parses and evaluates
    for exprs in queries.values():
        for expr in exprs:
            api.query(to_promql(expr))
    for expr in alert_rules().values():
        api.query(expr)  # status success, whatever the result

    # 2. the variables list real label values
    for name, expr in variable_queries(dash).items():
        assert poll(lambda e=expr: api.query(e), 20), f"variable {name} has no values"

    # 3. the core panels show data
    wired = {title: recorded(metrics, metric) for title, metric in PENDING_WIRING.items()}

    def empty_panels() -> list[str]:
        missing = []
        for title in CORE_PANELS:
            if title in PENDING_WIRING and not wired[title]:
                continue
            if not any(api.finite(to_promql(e)) for e in queries[title]):
                missing.append(title)
        return missing

    missing = poll(lambda: not empty_panels(), 25) or empty_panels()
    assert missing is True or not missing, f"core panels without data: {missing}"

    # 4. specific values Prometheus must have seen
    by_class = {
        s["metric"].get("class") for s in api.query(to_promql(queries["Requests/s by class"][0]))
    }
    assert {"direct", "complex", "completion"} <= by_class  # named variants are "direct"
    assert len(by_class - {"none"}) >= 4  # and `auto` classified something
    backend_up = {
        s["metric"]["backend"]: s["value"][1] for s in api.query("variant_proxy_backend_up")
    }
    assert backend_up == {"main": "1", "spare": "1", "dead": "0"}
    fallbacks = api.query("variant_proxy_fallbacks_total")
    assert any(s["metric"]["from_variant"] == "ghost" for s in fallbacks)
    statuses = {s["metric"]["status"] for s in api.query("variant_proxy_requests_total")}
    assert {"200", "404", "502"} <= statuses

    # 5. the rules loaded and evaluate without errors
    def rules_ok() -> list[dict[str, Any]]:
        body = api.http.get("/api/v1/rules").json()
        rules = [r for g in body["data"]["groups"] for r in g["rules"]]
        return rules if all(r.get("lastEvaluation", "").startswith("20") for r in rules) else []

    rules = poll(rules_ok, 10)
    assert {r["name"] for r in rules} == set(alert_rules())
    assert all(r["health"] == "ok" for r in rules), [(r["name"], r.get("lastError")) for r in rules]
