// One job: its fields, payload and result, every failed attempt with its traceback, the timeline
// of its states, its parents and children, and what can be done with it.

import { call, get, post, seg } from "../api.js";
import { confirmed } from "../confirm.js";
import { ago, badge, h, link, pretty, replace, route, when } from "../dom.js";
import { flash } from "../flash.js";

const WAITING = ["PENDING", "SCHEDULED", "BLOCKED", "FAILED"];
const FINISHED = ["COMPLETED", "DEAD_LETTERED", "CANCELLED"];

function timeline(job, attempts) {
  const events = [[job.created_at, `Enqueued in ${job.queue}`]];
  for (const a of attempts) {
    if (a.started_at) events.push([a.started_at, `Attempt ${a.attempt} started${a.worker_id ? ` on ${a.worker_id}` : ""}`]);
    events.push([a.failed_at, `Attempt ${a.attempt} failed: ${a.error}`]);
  }
  const recorded = new Set(attempts.map((a) => a.started_at));
  if (job.last_attempt && !recorded.has(job.last_attempt) && job.state !== "FAILED" && job.state !== "DEAD_LETTERED") {
    events.push([job.last_attempt, `Attempt ${job.retry_count + 1} started${job.worker_id ? ` on ${job.worker_id}` : ""}`]);
  }
  if (job.state === "FAILED" && job.next_retry_at) events.push([job.next_retry_at, "Retry due"]);
  if (job.state === "SCHEDULED") events.push([job.run_at, "Due"]);
  if (FINISHED.includes(job.state) && job.finished_at) {
    const label = { COMPLETED: "Completed", DEAD_LETTERED: "Dead-lettered", CANCELLED: "Cancelled" }[job.state];
    events.push([job.finished_at, label]);
  }
  events.sort((a, b) => Date.parse(a[0]) - Date.parse(b[0]));
  return h("ol", { class: "timeline" }, events.map(([at, text]) =>
    h("li", {}, h("time", { datetime: at, title: at }, new Date(at).toISOString().replace("T", " ").slice(0, 23)),
      " ", h("span", { class: "muted" }, `(${ago(at)})`), " ", text)));
}

// opened: the attempts the user has open (kept across refreshes); null on the first render.
function attemptList(attempts, opened) {
  if (!attempts.length) return h("p", { class: "muted" }, "No failed attempt.");
  return h("div", { class: "attempts" }, attempts.map((a, i) => h("details", { class: "attempt", "data-attempt": i,
    open: opened ? opened.has(String(i)) : a === attempts[attempts.length - 1] },
    h("summary", {}, `Attempt ${a.attempt}: `, h("span", { class: "error-text" }, a.error), " ", when(a.failed_at)),
    h("p", { class: "small muted" }, `worker ${a.worker_id || "-"}, started ${a.started_at || "-"}`),
    a.traceback ? h("pre", { class: "traceback" }, a.traceback) : h("p", { class: "muted small" }, "No traceback."))));
}

function fields(job) {
  const rows = [
    ["Task", job.task], ["Queue", link("jobs", { queue: job.queue }, job.queue)], ["Priority", job.priority],
    ["Failed attempts", `${job.retry_count} (retries allowed: ${job.max_retries})`], ["Idempotency key", job.idempotency_key || "-"],
    ["Rate key", job.rate_key || "-"], ["Created", when(job.created_at)], ["Runs at", when(job.run_at)],
    ["Started", when(job.started_at)], ["Last attempt", when(job.last_attempt)], ["Finished", when(job.finished_at)],
    ["Next retry", when(job.next_retry_at)], ["Worker", job.worker_id || "-"], ["Lease expires", when(job.lease_expires_at)],
    ["Timeout", job.timeout === null ? "-" : `${job.timeout} s`],
  ];
  return h("dl", { class: "fields" }, rows.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

function actions(job, reload) {
  const buttons = [];
  if (job.state === "DEAD_LETTERED") {
    buttons.push(h("button", { type: "button", id: "retry-job", onclick: () => confirmed(
      `Retry job ${job.id}? It goes back to its queue with a fresh set of retries.`,
      async () => { await post(`/dlq/${seg(job.id)}/retry`); return "Job sent back to its queue."; }, flash, reload) }, "Retry"));
  }
  if (WAITING.includes(job.state) || job.state === "PROCESSING") {
    const running = job.state === "PROCESSING";
    buttons.push(h("button", { type: "button", class: "danger", id: "cancel-job", onclick: () => confirmed(
      running ? `Cancel job ${job.id}? It is running: its worker stops it within a second, and it is not retried.`
        : `Cancel job ${job.id}? It will not run.`,
      async () => { await post(`/jobs/${seg(job.id)}/cancel`); return "Job cancelled."; }, flash, reload) }, "Cancel"));
  }
  if (FINISHED.includes(job.state)) {
    buttons.push(h("button", { type: "button", class: "danger", id: "delete-job", onclick: () => confirmed(
      `Delete job ${job.id}? This cannot be undone.`,
      async () => { await call("DELETE", `/jobs/${seg(job.id)}`); window.location.hash = route("jobs", {}); return "Job deleted."; },
      flash) }, "Delete"));
  }
  return h("div", { class: "actions" }, buttons);
}

export default {
  async mount(main, args) {
    const id = args[0] || "";
    let rendered = false;
    const render = async () => {
      const [job, attempts] = await Promise.all([get(`/jobs/${seg(id)}`), get(`/jobs/${seg(id)}/attempts`)]);
      const opened = rendered ? new Set([...main.querySelectorAll("details.attempt[open]")].map((d) => d.dataset.attempt)) : null;
      rendered = true;
      replace(main,
        h("h1", {}, "Job ", h("span", { class: "mono" }, job.id), " ", badge(job.state)),
        actions(job, update),
        h("div", { class: "columns" },
          h("section", {}, h("h2", {}, "Details"), fields(job)),
          h("section", {}, h("h2", {}, "Timeline"), timeline(job, attempts.attempts))),
        h("h2", {}, "Payload"), h("pre", { class: "json", id: "payload" }, pretty(job.payload)),
        job.state === "COMPLETED" ? [h("h2", {}, "Result"), h("pre", { class: "json", id: "result" }, pretty(job.result))] : null,
        job.error ? [h("h2", {}, "Last error"), h("pre", { class: "error-text", id: "last-error" }, job.error)] : null,
        h("h2", {}, "Failed attempts"), attemptList(attempts.attempts, opened),
        h("h2", {}, "Parents"), job.parents.length ? h("ul", {}, job.parents.map((p) => h("li", {}, link(["job", p], {}, p))))
          : h("p", { class: "muted" }, "None."),
        h("h2", {}, "Children"), job.children.length ? h("ul", {}, job.children.map((c) => h("li", {}, link(["job", c], {}, c))))
          : h("p", { class: "muted" }, "None."));
      return job;
    };
    // A finished job changes only by an action on this page (which renders it again); until it
    // finishes, it is live. The page is rebuilt in place, at the same scroll position.
    const update = async () => {
      const y = window.scrollY;
      finished = FINISHED.includes((await render()).state);
      window.scrollTo(0, y);
    };
    let finished = FINISHED.includes((await render()).state);
    return { refresh: async () => { if (!finished) await update(); } };
  },
};
