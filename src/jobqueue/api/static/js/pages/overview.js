// The overview: totals, live charts, every queue, every worker.

import { get, post, seg } from "../api.js";
import { LineChart } from "../chart.js";
import { badge, duration, h, link, number, replace, table, when } from "../dom.js";
import { flash } from "../flash.js";

const STATES = ["PENDING", "SCHEDULED", "BLOCKED", "PROCESSING", "FAILED", "COMPLETED", "DEAD_LETTERED", "CANCELLED"];
const rate = (v) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)) + "/s";

export function limitsText(limits) {
  if (!limits) return "";
  const parts = [];
  if (limits.rate) parts.push(`rate ${limits.rate} (burst ${limits.burst})`);
  if (limits.concurrency !== null && limits.concurrency !== undefined) parts.push(`concurrency ${limits.concurrency}`);
  if (limits.key_rate) parts.push(`per key ${limits.key_rate}`);
  if (limits.key_concurrency !== null && limits.key_concurrency !== undefined) parts.push(`per key concurrency ${limits.key_concurrency}`);
  return parts.join(", ");
}

export function pauseButton(queue, after) {
  const label = queue.paused ? "Resume" : "Pause";
  return h("button", {
    type: "button", class: queue.paused ? "" : "secondary", "data-action": `${label.toLowerCase()}-${queue.name}`,
    onclick: async (event) => {
      event.target.disabled = true;
      try {
        await post(`/queues/${seg(queue.name)}/${queue.paused ? "resume" : "pause"}`);
        flash(`Queue ${queue.name} ${queue.paused ? "resumed" : "paused"}.`);
      } catch (error) {
        flash(error.message, "error");
      }
      await after();
    },
  }, label);
}

function queueRow(q, refresh) {
  return h("tr", { "data-queue": q.name },
    h("td", {}, link("jobs", { queue: q.name }, q.name), q.paused ? h("span", { class: "badge s-paused" }, "paused") : null),
    STATES.map((s) => h("td", { class: "num" }, q.states[s] ? link("jobs", { queue: q.name, state: s }, number(q.states[s])) : "0")),
    h("td", { class: "num" }, number(q.depth), q.capacity !== null ? ` / ${number(q.capacity)}` : ""),
    h("td", { class: "small" }, limitsText(q.limits)),
    h("td", {}, pauseButton(q, refresh)));
}

function workerRow(w) {
  const c = w.counters || {};
  return h("tr", { "data-worker": w.id },
    h("td", { class: "mono", title: w.id }, w.host), h("td", { class: "num" }, w.pid),
    h("td", {}, w.queues.join(", ")), h("td", { class: "num" }, `${w.busy} / ${w.concurrency}`),
    h("td", { class: "num" }, number(c.completed)), h("td", { class: "num" }, number(c.failed)),
    h("td", {}, when(w.reported_at)), h("td", {}, when(w.started_at)), h("td", { class: "small" }, w.version));
}

function totals(queues, workers) {
  const sum = (state) => queues.reduce((n, q) => n + (q.states[state] || 0), 0);
  const cards = [
    ["Waiting", sum("PENDING") + sum("SCHEDULED") + sum("BLOCKED") + sum("FAILED"), { }],
    ["Running", sum("PROCESSING"), { state: "PROCESSING" }],
    ["Retrying", sum("FAILED"), { state: "FAILED" }],
    ["Dead letters", sum("DEAD_LETTERED"), null],
    ["Completed", sum("COMPLETED"), { state: "COMPLETED" }],
    ["Workers", workers.length, null],
    ["Busy slots", `${workers.reduce((n, w) => n + w.busy, 0)} / ${workers.reduce((n, w) => n + w.concurrency, 0)}`, null],
  ];
  return h("div", { class: "cards" }, cards.map(([label, value, params]) =>
    h("div", { class: "card stat" }, h("span", { class: "label" }, label),
      h("span", { class: "value" }, label === "Dead letters" ? link("dlq", {}, number(value)) :
        params ? link("jobs", params, typeof value === "number" ? number(value) : value) : (typeof value === "number" ? number(value) : value)))));
}

export default {
  async mount(main) {
    const throughput = new LineChart("Jobs per second", [
      { name: "enqueued", className: "c1" }, { name: "completed", className: "c2" }, { name: "failed", className: "c3" }], rate, 900);
    const latency = new LineChart("Enqueue to start", [
      { name: "p50", className: "c1" }, { name: "p95", className: "c4" }, { name: "p99", className: "c3" }], duration, 900);
    const summary = h("div", {});
    const queueBox = h("div", {});
    const workerBox = h("div", {});
    replace(main, h("h1", {}, "Overview"), summary, h("div", { class: "charts" }, throughput.el, latency.el),
      h("h2", {}, "Queues"), queueBox, h("h2", {}, "Workers"), workerBox);
    let points = [];
    let lastSeq = 0;
    let epoch = null;
    // After an action of this page, it reads the store again rather than the overview every tab shares.
    const refresh = async (fresh) => {
      const [data, pulse] = await Promise.all([get(`/ui/api/overview${fresh === true ? "?fresh=1" : ""}`),
        get(`/ui/api/pulse?after=${lastSeq}`)]);
      if (pulse.epoch !== epoch) {
        // Another API process answers (a restart): its points start over, so does the chart.
        const first = epoch === null;
        epoch = pulse.epoch;
        points = [];
        lastSeq = 0;
        if (!first) pulse.points = (await get("/ui/api/pulse?after=0")).points;
      }
      document.getElementById("backend").textContent = `${data.backend} · v${data.version}`;
      replace(summary, totals(data.queues, data.workers));
      replace(queueBox, table(["Queue", ...STATES.map((s) => badge(s)), "Waiting / capacity", "Limits", ""],
        data.queues.map((q) => queueRow(q, () => refresh(true))), "No queues yet."));
      replace(workerBox, table(["Host", "PID", "Queues", "Busy", "Completed", "Failed", "Last report", "Started", "Version"],
        data.workers.map(workerRow), "No worker is reporting: start one with `jobqueue worker`."));
      for (const [seq, at, enqueued, completed, failed, lat] of pulse.points) {
        if (seq <= lastSeq) continue; // already drawn (two refreshes crossed)
        points.push({ at, rates: [enqueued, completed, failed], latency: lat || [null, null, null] });
        lastSeq = seq;
      }
      const horizon = (points.length ? points[points.length - 1].at : 0) - pulse.window;
      points = points.filter((p) => p.at >= horizon);
      throughput.draw(points.map((p) => ({ at: p.at, values: p.rates })));
      latency.draw(points.map((p) => ({ at: p.at, values: p.latency })));
    };
    await refresh();
    return { refresh };
  },
};
