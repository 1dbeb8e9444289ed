// The GLLM dashboard: polls GET /stats and draws the workers, the totals, three charts and the recent errors.
// Everything the balancer reports (addresses, models, error messages) goes in through textContent, never HTML.
"use strict";

(function () {
  const PALETTE = ["#3b6fd8", "#1f9d55", "#d98b00", "#a24bd6", "#d64545", "#1aa3b8", "#7a8a2e", "#e0669c",
                   "#5a5fd6", "#8c6d3b", "#2e8a7a", "#c45f1c"];
  const POLL_MS = 2000;
  const MAX_ERROR_ROWS = 8;
  // Served at /dashboard and /v1/dashboard: the stats live beside the page.
  const base = location.pathname.replace(/\/dashboard\/?$/, "");
  const state = { window: 300, step: 2, draws: 0, colors: new Map() };

  const charts = {
    rps: new LineChart(document.getElementById("c-rps"), { title: "Requests per second", minMax: 1 }),
    latency: new LineChart(document.getElementById("c-latency"), { title: "Latency", unit: "ms", minMax: 10 }),
    inflight: new LineChart(document.getElementById("c-inflight"), { title: "In flight per worker", minMax: 1 }),
  };

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function ms(value) {
    if (value === null || value === undefined) return "–";
    return value >= 1000 ? (value / 1000).toFixed(2) + " s" : value.toFixed(value >= 100 ? 0 : 1) + " ms";
  }

  function num(value, digits) {
    if (value === null || value === undefined) return "–";
    return Number(value).toFixed(digits || 0);
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "–";
    const s = Math.floor(seconds);
    if (s < 60) return s + "s";
    if (s < 3600) return Math.floor(s / 60) + "m " + (s % 60) + "s";
    return Math.floor(s / 3600) + "h " + Math.floor((s % 3600) / 60) + "m";
  }

  function colorOf(address) {
    if (!state.colors.has(address)) state.colors.set(address, PALETTE[state.colors.size % PALETTE.length]);
    return state.colors.get(address);
  }

  function badgeClass(value) {
    if (["ready", "healthy", "closed"].includes(value)) return "badge ok";
    if (["loading", "stopping", "half_open", "unknown", "idle", "released"].includes(value)) return "badge warn";
    if (["failed", "unhealthy", "open", "ejected"].includes(value)) return "badge bad";
    return "badge";
  }

  function healthOf(worker) {
    if (worker.health && typeof worker.health === "object") return String(worker.health.state || "unknown");
    if (typeof worker.health === "string") return worker.health;
    return worker.healthy === true ? "healthy" : worker.healthy === false ? "unhealthy" : "unknown";
  }

  function breakerOf(worker) {
    const b = worker.breaker;
    if (b === null || b === undefined) return null;
    return typeof b === "object" ? String(b.state || "unknown") : String(b);
  }

  function field(dl, name, label, value, className) {
    dl.appendChild(el("dt", null, label));
    const dd = el("dd", className, value);
    dd.dataset.field = name;
    dl.appendChild(dd);
  }

  function renderWorkers(workers) {
    const box = document.getElementById("workers");
    box.replaceChildren();
    if (!workers.length) {
      box.appendChild(el("div", "empty", "No workers registered."));
      return;
    }
    for (const w of workers) {
      const card = el("div", "card " + (w.state || "unknown"));
      card.dataset.address = w.address;
      const addr = el("div", "addr");
      const swatch = el("span", "swatch");
      swatch.style.background = colorOf(w.address);
      addr.appendChild(swatch);
      addr.appendChild(document.createTextNode(w.address));
      addr.title = w.address;
      card.appendChild(addr);
      const model = el("div", "model", w.model || "no model");
      model.dataset.field = "model";
      card.appendChild(model);
      const dl = el("dl");
      const health = healthOf(w);
      const breaker = breakerOf(w);
      field(dl, "state", "state", w.state || "unknown", badgeClass(w.state || "unknown"));
      field(dl, "health", "health", health, badgeClass(health));
      field(dl, "in_flight", "in flight", num(w.in_flight));
      field(dl, "requests_per_s", "req/s", num(w.requests_per_s, 1));
      field(dl, "latency_p50_ms", "p50", ms(w.latency_p50_ms));
      field(dl, "errors", "errors", num(w.errors));
      if (breaker !== null) field(dl, "breaker", "breaker", breaker, badgeClass(breaker));
      card.appendChild(dl);
      if (w.last_error && w.state !== "ready") {
        const err = el("div", "model", w.last_error);
        err.title = w.last_error;
        card.appendChild(err);
      }
      box.appendChild(card);
    }
  }

  function renderTotals(stats) {
    const c = stats.cluster, t = stats.totals;
    document.getElementById("model").textContent = c.model || "none";
    document.getElementById("policy").textContent = c.policy;
    document.getElementById("version").textContent = c.version;
    document.getElementById("uptime").textContent = duration(c.uptime_s);
    document.getElementById("t-ready").textContent = c.ready + " / " + c.workers;
    document.getElementById("t-inflight").textContent = num(c.in_flight);
    document.getElementById("t-rps").textContent = num(t.requests_per_s, 1);
    document.getElementById("t-p50").textContent = ms(t.latency_p50_ms);
    document.getElementById("t-p99").textContent = ms(t.latency_p99_ms);
    document.getElementById("t-errors").textContent = num(t.errors);
  }

  function renderCharts(series) {
    const times = series.t;
    let points = charts.rps.draw(times, [
      { label: "requests/s", color: PALETTE[0], values: series.requests_per_s },
      { label: "errors/s", color: "#d64545", values: series.errors_per_s },
    ]);
    points += charts.latency.draw(times, [
      { label: "p50", color: PALETTE[0], values: series.latency_p50_ms },
      { label: "p99", color: "#d98b00", values: series.latency_p99_ms },
      { label: "time to first byte p50", color: PALETTE[1], values: series.ttfb_p50_ms },
    ]);
    const perWorker = Object.keys(series.workers).sort().map((address) => ({
      label: address.replace(/^https?:\/\//, ""),
      color: colorOf(address),
      values: series.workers[address].in_flight,
    }));
    points += charts.inflight.draw(times, perWorker);
    return points;
  }

  function renderErrors(errors) {
    const box = document.getElementById("errors");
    box.replaceChildren();
    if (!errors.length) {
      box.appendChild(el("div", "empty", "No errors."));
      return;
    }
    // Identical errors in a row (same route, status, worker and message) make one line with a count.
    const groups = [];
    for (const e of errors) {
      const last = groups[groups.length - 1];
      if (last && last.route === e.route && last.status === e.status && last.worker === e.worker &&
          last.message === e.message) {
        last.count += 1;
        last.first = e.time;
      } else {
        groups.push({ ...e, count: 1, first: e.time });
      }
    }
    const table = el("table");
    const head = el("tr");
    for (const name of ["last seen", "route", "status", "worker", "message", "count"]) {
      head.appendChild(el("th", null, name));
    }
    table.appendChild(head);
    for (const g of groups.slice(0, MAX_ERROR_ROWS)) {
      const row = el("tr");
      row.appendChild(el("td", null, new Date(g.time * 1000).toLocaleTimeString()));
      row.appendChild(el("td", null, g.route));
      row.appendChild(el("td", null, g.status));
      row.appendChild(el("td", null, g.worker || "–"));
      row.appendChild(el("td", "msg", g.message));
      row.appendChild(el("td", null, g.count > 1 ? "×" + g.count : "1"));
      table.appendChild(row);
    }
    box.appendChild(table);
  }

  async function refresh() {
    const conn = document.getElementById("conn");
    try {
      const response = await fetch(base + "/stats?window=" + state.window + "&step=" + state.step,
                                   { cache: "no-store" });
      if (!response.ok) throw new Error("HTTP " + response.status);
      const stats = await response.json();
      renderTotals(stats);
      renderWorkers(stats.workers);
      const points = renderCharts(stats.series);
      renderErrors(stats.recent_errors);
      state.draws += 1;
      document.body.dataset.draws = String(state.draws);
      document.body.dataset.points = String(points);
      conn.className = "";
      conn.textContent = "updated " + new Date().toLocaleTimeString();
    } catch (error) {
      conn.className = "down";
      conn.textContent = "balancer unreachable (" + error.message + ")";
    }
  }

  for (const button of document.querySelectorAll(".controls button")) {
    button.addEventListener("click", () => {
      state.window = Number(button.dataset.window);
      state.step = Number(button.dataset.step);
      for (const other of document.querySelectorAll(".controls button")) other.classList.toggle("on", other === button);
      refresh();
    });
  }

  async function loop() {
    await refresh();
    setTimeout(loop, POLL_MS);
  }
  loop();
})();
