// variant-proxy status page. Reads GET /status.json (see docs/status-page.md) and draws
// tables and SVG charts. No framework, no build step, no inline code: the page's CSP only
// allows this file. Data goes into the DOM through textContent and SVG attributes only.
"use strict";

const POLL_MS = 2000;
const KEY_STORE = "variant-proxy-key";
const SVG = "http://www.w3.org/2000/svg";
let timer = null;

// -- the API key: from the login form or #key=… (never sent to the server in the URL) ----------

function takeKeyFromFragment() {
  const match = /(?:^#|&)key=([^&]+)/.exec(location.hash);
  if (match) {
    sessionStorage.setItem(KEY_STORE, decodeURIComponent(match[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
}

function authHeaders() {
  const key = sessionStorage.getItem(KEY_STORE);
  return key ? { Authorization: "Bearer " + key } : {};
}

// -- small DOM helpers ---------------------------------------------------------------------------

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}

function row(cells) {
  const tr = document.createElement("tr");
  for (const cell of cells) tr.appendChild(cell instanceof Node ? cell : el("td", cell));
  return tr;
}

function num(value, digits) {
  const td = el("td", value === null || value === undefined ? "–" : Number(value).toFixed(digits));
  td.className = "num";
  return td;
}

function ms(seconds) {
  return num(seconds === null || seconds === undefined ? null : seconds * 1000, 0);
}

function slug(text) {
  return String(text).toLowerCase().replace(/[^a-z0-9]+/g, "-");
}

function fill(tableId, rows) {
  const body = document.querySelector("#" + tableId + " tbody");
  body.replaceChildren(...rows);
}

function identity(fields) {
  if (!fields) return "–";
  const keys = ["sha256", "digest", "quantization", "id", "model_path"];
  const parts = [];
  for (const k of keys) {
    if (fields[k] !== undefined && fields[k] !== null && fields[k] !== "") {
      const v = String(fields[k]);
      parts.push(k + "=" + (k === "sha256" || k === "digest" ? v.slice(0, 12) : v));
    }
  }
  return parts.join(" ") || "–";
}

// -- tables --------------------------------------------------------------------------------------

function renderVariants(variants) {
  const rows = [];
  for (const [name, v] of Object.entries(variants)) {
    const pin = v.pin || {};
    const pinCell = el("td", pin.status || "unpinned", "state pin-" + slug(pin.status || "unpinned"));
    if (pin.reason) pinCell.title = pin.reason;
    rows.push(row([
      el("td", name, "mono"),
      el("td", v.backends.join(", ")),
      el("td", v.state, "state state-" + slug(v.state)),
      num(v.in_flight, 0),
      num(v.queued, 0),
      pinCell,
      el("td", identity(pin.pinned), "mono"),
      el("td", identity(pin.served), "mono"),
    ]));
    rows[rows.length - 1].dataset.variant = name;
  }
  fill("variants", rows);
}

function renderBackends(backends) {
  const rows = [];
  for (const [name, b] of Object.entries(backends)) {
    const m = b.managed;
    const process = m ? m.state + " · pid " + (m.pid === null ? "–" : m.pid) + " · " +
      m.restarts + " restart" + (m.restarts === 1 ? "" : "s") : "external";
    const tr = row([
      el("td", name, "mono"),
      el("td", b.kind),
      el("td", b.state, "state state-" + slug(b.state)),
      el("td", b.health_detail),
      el("td", b.breaker + (b.consecutive_failures ? " (" + b.consecutive_failures + " failures)" : "")),
      num(b.in_flight, 0),
      num(b.queued, 0),
      el("td", process),
    ]);
    tr.dataset.backend = name;
    rows.push(tr);
  }
  fill("backends", rows);
}

function renderDecisions(decisions, logPrompts) {
  const rows = decisions.items.map((d) => {
    const status = el("td", d.status, d.status >= 400 ? "status-error" : "status-ok");
    const note = [d.prompt, d.reason].filter((x) => x).join(" — ");
    const tr = row([
      el("td", new Date(d.time * 1000).toLocaleTimeString()),
      el("td", d.endpoint),
      el("td", d.class),
      el("td", d.rule, "mono"),
      el("td", d.variant, "mono"),
      el("td", d.fallback.length ? d.fallback.join(" → ") : "", "mono"),
      status,
      ms(d.ttft_seconds),
      ms(d.duration_seconds),
      num(d.tokens_per_second, 1),
      el("td", d.source),
      el("td", note || (logPrompts ? "" : "—")),
    ]);
    tr.dataset.variant = d.variant;
    tr.dataset.requestId = d.request_id;
    return tr;
  });
  fill("decisions", rows);
  document.getElementById("decisions-note").textContent =
    "The last " + decisions.items.length + " of " + decisions.held + " requests held in memory " +
    "(at most " + decisions.capacity + ", server.status_page.history). " +
    (logPrompts ? "Prompts shown: server.log_prompts is on." : "No prompt text: server.log_prompts is off.");
}

// -- charts --------------------------------------------------------------------------------------

// lines: [{name, points: [[t, v|null], ...]}]; draws each run of non-null points as a polyline
function chart(id, title, lines, x0, x1, format) {
  const W = 320, H = 90, L = 4, R = 4, T = 12, B = 4;
  const card = el("div", null, "card");
  card.appendChild(el("h3", title));
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 " + W + " " + H);
  svg.setAttribute("class", "chart");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", title);
  svg.dataset.chart = id;
  let max = 0, plotted = 0;
  for (const line of lines) for (const [, v] of line.points) if (v !== null && v > max) max = v;
  const top = max > 0 ? max * 1.1 : 1;
  const sx = (t) => L + (x1 > x0 ? (t - x0) / (x1 - x0) : 0) * (W - L - R);
  const sy = (v) => H - B - (v / top) * (H - T - B);
  const axis = document.createElementNS(SVG, "line");
  axis.setAttribute("x1", L); axis.setAttribute("x2", W - R);
  axis.setAttribute("y1", H - B); axis.setAttribute("y2", H - B);
  axis.setAttribute("class", "axis");
  svg.appendChild(axis);
  const label = document.createElementNS(SVG, "text");
  label.setAttribute("x", L); label.setAttribute("y", 10); label.setAttribute("class", "label");
  label.textContent = "max " + format(max);
  svg.appendChild(label);
  lines.forEach((line, i) => {
    let run = [];
    const flush = () => {
      if (run.length === 1) run.push([run[0][0] + 1, run[0][1]]); // a lone point: a short dash
      if (run.length > 1) {
        const poly = document.createElementNS(SVG, "polyline");
        poly.setAttribute("points", run.map(([x, y]) => x.toFixed(1) + "," + y.toFixed(1)).join(" "));
        poly.setAttribute("class", "s" + (i % 4));
        svg.appendChild(poly);
      }
      run = [];
    };
    for (const [t, v] of line.points) {
      if (v === null || v === undefined) { flush(); continue; }
      run.push([sx(t), sy(v)]);
      plotted += 1;
    }
    flush();
  });
  svg.dataset.points = String(plotted);
  card.appendChild(svg);
  const legend = el("div", null, "legend");
  lines.forEach((line, i) => {
    legend.appendChild(el("span", "— " + line.name + "  ", "k" + (i % 4)));
  });
  card.appendChild(legend);
  if (!plotted) card.appendChild(el("div", "no data in this window", "empty-note"));
  return card;
}

function renderCharts(s, now) {
  const x0 = s.start, x1 = s.start + s.buckets * s.step_seconds;
  const at = (i) => s.start + (i + 0.5) * s.step_seconds;
  const pts = (values, scale) => values.map((v, i) => [at(i), v === null ? null : v * (scale || 1)]);
  const cards = [];
  for (const [name, v] of Object.entries(s.variants)) {
    cards.push(chart(name + ":requests", name + " · requests/s and errors",
      [{ name: "req/s", points: pts(v.requests_per_second) },
       { name: "errors/s", points: pts(v.errors, 1 / s.step_seconds) }],
      x0, x1, (m) => m.toFixed(2) + "/s"));
    cards.push(chart(name + ":ttft", name + " · time to first token",
      [{ name: "p50", points: pts(v.ttft_p50, 1000) }, { name: "p95", points: pts(v.ttft_p95, 1000) }],
      x0, x1, (m) => m.toFixed(0) + " ms"));
    cards.push(chart(name + ":tokens", name + " · output tokens/s (median per request)",
      [{ name: "tok/s", points: pts(v.tokens_per_second) }],
      x0, x1, (m) => m.toFixed(1)));
  }
  document.getElementById("charts").replaceChildren(...cards);
  const res = [];
  for (const [name, b] of Object.entries(s.backends || {})) {
    res.push(chart(name + ":cpu", name + " · CPU %", [{ name: "cpu", points: b.cpu_percent }],
      x0, now, (m) => m.toFixed(0) + " %"));
    res.push(chart(name + ":rss", name + " · resident memory",
      [{ name: "RSS", points: b.rss_bytes.map(([t, v]) => [t, v / 1048576]) }],
      x0, now, (m) => m.toFixed(0) + " MiB"));
  }
  if (!res.length) res.push(el("p", "no backend process found on this machine yet", "muted"));
  document.getElementById("resources").replaceChildren(...res);
}

// -- benchmark -----------------------------------------------------------------------------------

function renderBenchmark(bench) {
  const box = document.getElementById("benchmark");
  if (!bench || !bench.run) {
    const text = bench && bench.running ? "a benchmark is running…" : "no benchmark result yet";
    box.replaceChildren(el("p", text, "muted"));
    return;
  }
  const run = bench.run;
  const head = el("p", "Run " + run.run_id + ", finished " + (run.finished_at || "?") + ". ", "muted");
  if (run.report) {
    const link = el("a", "full report");
    link.href = run.report;
    link.id = "report-link";
    link.addEventListener("click", openReport);
    head.appendChild(link);
  }
  const table = el("table");
  table.id = "bench-table";
  table.appendChild(row(["variant", "suite", "class", "pass@1", "interval", "scored", "tok/s p50", "TTFT p50 ms"]
    .map((h) => el("th", h))));
  for (const [variant, rows] of Object.entries(run.variants)) {
    for (const r of rows) {
      table.appendChild(row([
        el("td", variant, "mono"), el("td", r.suite), el("td", r.class),
        num(r.pass_at_1, 3),
        el("td", r.interval ? r.interval[0].toFixed(3) + " – " + r.interval[1].toFixed(3) : "–"),
        num(r.scored, 0), num(r.tokens_per_second, 1), ms(r.ttft_seconds),
      ]));
    }
  }
  box.replaceChildren(head, table);
}

// With a key the report can't be a plain link (a navigation sends no header): fetch it and
// save it as a file the browser opens locally.
async function openReport(event) {
  const headers = authHeaders();
  if (!headers.Authorization) return;
  event.preventDefault();
  const response = await fetch(event.target.href, { headers });
  if (!response.ok) return;
  const url = URL.createObjectURL(await response.blob());
  const a = el("a");
  a.href = url;
  a.download = "variant-proxy-benchmark.html";
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

// -- polling -------------------------------------------------------------------------------------

function showLogin(message) {
  document.getElementById("main").hidden = true;
  document.getElementById("login").hidden = false;
  document.getElementById("logout").hidden = true;
  document.getElementById("login-error").textContent = message || "";
  document.getElementById("summary").textContent = "locked";
}

function render(doc) {
  document.getElementById("login").hidden = true;
  document.getElementById("main").hidden = false;
  document.getElementById("logout").hidden = !sessionStorage.getItem(KEY_STORE);
  const backends = Object.values(doc.backends);
  const up = backends.filter((b) => b.state === "up").length;
  document.getElementById("summary").textContent =
    up + " of " + backends.length + " backends up · config " + doc.config.source +
    " · pinning " + doc.config.pinning_policy + " · updated " +
    new Date(doc.generated_at * 1000).toLocaleTimeString();
  renderVariants(doc.variants);
  renderBackends(doc.backends);
  renderCharts(doc.series, doc.generated_at);
  renderDecisions(doc.decisions, doc.config.log_prompts);
  renderBenchmark(doc.benchmark);
  document.body.dataset.loaded = String(doc.generated_at);
}

async function poll() {
  clearTimeout(timer);
  timer = null;
  if (document.visibilityState === "hidden") return; // polled again when visible
  const windowSeconds = document.getElementById("window").value;
  try {
    const response = await fetch("/status.json?recent=50&window=" + windowSeconds, {
      headers: authHeaders(),
      cache: "no-store",
    });
    if (response.status === 401) {
      const had = sessionStorage.getItem(KEY_STORE);
      sessionStorage.removeItem(KEY_STORE);
      showLogin(had ? "That key was refused." : "");
      return; // no polling until a key is given
    }
    if (!response.ok) throw new Error("HTTP " + response.status);
    render(await response.json());
  } catch (error) {
    document.getElementById("summary").textContent = "cannot reach the proxy: " + error.message;
  }
  timer = setTimeout(poll, POLL_MS);
}

function start() {
  takeKeyFromFragment();
  document.getElementById("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(KEY_STORE, document.getElementById("key").value.trim());
    document.getElementById("key").value = "";
    poll();
  });
  document.getElementById("logout").addEventListener("click", () => {
    sessionStorage.removeItem(KEY_STORE);
    showLogin("");
  });
  document.getElementById("window").addEventListener("change", poll);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && timer === null) poll();
  });
  poll();
}

document.addEventListener("DOMContentLoaded", start);
