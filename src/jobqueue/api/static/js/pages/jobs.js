// Jobs: filter by state, queue, task and creation time, look one up by id or idempotency key,
// page through with cursors (each page is one index range, however many jobs are stored), and
// submit a new one.

import { ApiError, get, post, query, seg } from "../api.js";
import { badge, h, link, replace, route, table, when } from "../dom.js";
import { flash } from "../flash.js";

const STATES = ["", "PENDING", "SCHEDULED", "BLOCKED", "PROCESSING", "FAILED", "COMPLETED", "DEAD_LETTERED", "CANCELLED"];
const PAGE = 50;

function toIso(local) {
  if (!local) return "";
  const moment = new Date(local);
  return Number.isNaN(moment.getTime()) ? "" : moment.toISOString();
}

function toLocal(iso) {
  if (!iso) return "";
  const moment = new Date(iso);
  if (Number.isNaN(moment.getTime())) return "";
  const shifted = new Date(moment.getTime() - moment.getTimezoneOffset() * 60000);
  return shifted.toISOString().slice(0, 16);
}

function field(label, input) {
  return h("label", {}, label, input);
}

export async function lookUp(text) {
  const value = text.trim();
  if (!value) return;
  try {
    const job = await get(`/jobs/${seg(value)}`);
    window.location.hash = route(["job", job.id]);
    return;
  } catch (error) {
    if (!(error instanceof ApiError) || (error.status !== 404 && error.status !== 400)) throw error;
  }
  const page = await get(`/jobs${query({ idempotency_key: value })}`);
  if (page.jobs.length) window.location.hash = route(["job", page.jobs[0].id]);
  else flash(`No job has the id or idempotency key "${value}".`, "error");
}

function filterForm(params) {
  const state = h("select", { name: "state" }, STATES.map((s) => h("option", { value: s, selected: s === (params.state || "") }, s || "any")));
  const queue = h("input", { name: "queue", value: params.queue || "", placeholder: "any" });
  const task = h("input", { name: "task", value: params.task || "", placeholder: "any" });
  const after = h("input", { name: "after", type: "datetime-local", value: toLocal(params.after) });
  const before = h("input", { name: "before", type: "datetime-local", value: toLocal(params.before) });
  return h("form", { class: "filters", id: "job-filters", onsubmit: (event) => {
    event.preventDefault();
    window.location.hash = route("jobs", { state: state.value, queue: queue.value.trim(), task: task.value.trim(),
      after: toIso(after.value), before: toIso(before.value) });
  } }, field("State", state), field("Queue", queue), field("Task", task), field("Created after", after),
  field("Created before", before), h("button", { type: "submit" }, "Filter"),
  h("a", { href: "#/jobs", class: "button secondary" }, "Clear"),
  // Pages go oldest first (cursor order): these jump to the jobs of late.
  [["Last 5 min", 300], ["Last hour", 3600]].map(([label, seconds]) => h("button", { type: "button", class: "secondary",
    onclick: () => { window.location.hash = route("jobs", { ...params, cursor: "", prev: "",
      after: new Date(Date.now() - seconds * 1000).toISOString() }); } }, label)));
}

function lookupForm() {
  const input = h("input", { name: "lookup", placeholder: "job id or idempotency key", size: 40 });
  return h("form", { class: "filters", id: "job-lookup", onsubmit: (event) => {
    event.preventDefault();
    lookUp(input.value).catch((error) => flash(error.message, "error"));
  } }, field("Find", input), h("button", { type: "submit" }, "Open"));
}

function submitForm() {
  const task = h("input", { name: "task", required: true, placeholder: "send_email" });
  const queue = h("input", { name: "queue", placeholder: "its task's queue" });
  const payload = h("textarea", { name: "payload", rows: 3, required: true, placeholder: '{"to": "a@example.com"}' });
  const retries = h("input", { name: "max_retries", type: "number", min: 0, placeholder: "its task's" });
  const key = h("input", { name: "idempotency_key", placeholder: "none" });
  return h("details", { class: "card" }, h("summary", {}, "Submit a job"),
    h("form", { class: "filters", id: "submit-job", onsubmit: async (event) => {
      event.preventDefault();
      let body;
      try {
        body = { task: task.value.trim(), payload: JSON.parse(payload.value) };
      } catch (error) {
        flash(`The payload is not JSON: ${error.message}`, "error");
        return;
      }
      if (queue.value.trim()) body.queue = queue.value.trim();
      if (retries.value !== "") body.max_retries = Number(retries.value);
      if (key.value.trim()) body.idempotency_key = key.value.trim();
      try {
        const answer = await post("/jobs", body);
        flash(`Job ${answer.job_id} accepted.${answer.warning ? " " + answer.warning : ""}`);
        window.location.hash = route(["job", answer.job_id]);
      } catch (error) {
        flash(error.message, "error");
      }
    } }, field("Task", task), field("Queue", queue), field("Payload (JSON)", payload), field("Max retries", retries),
    field("Idempotency key", key), h("button", { type: "submit" }, "Submit")));
}

export function jobRow(job, extra) {
  return h("tr", { "data-job": job.id },
    extra || null,
    h("td", { class: "mono" }, link(["job", job.id], {}, job.id)),
    h("td", {}, job.task), h("td", {}, link("jobs", { queue: job.queue }, job.queue)), h("td", {}, badge(job.state)),
    h("td", { class: "num" }, job.retry_count),
    h("td", {}, when(job.created_at)), h("td", { class: "error-text" }, job.error || ""));
}

export default {
  async mount(main, args, params) {
    const filters = { state: params.state, queue: params.queue, task: params.task,
      created_after: params.after, created_before: params.before };
    const page = await get(`/jobs${query({ ...filters, cursor: params.cursor, limit: PAGE })}`);
    const stack = params.prev ? params.prev.split(",") : [];
    const pager = h("div", { class: "pager" },
      stack.length || params.cursor ? h("a", { class: "button secondary", href: route("jobs", { ...params,
        cursor: stack.length ? stack[stack.length - 1] : "", prev: stack.slice(0, -1).join(",") }) }, "Previous") : null,
      page.next_cursor ? h("a", { class: "button secondary", id: "next-page", href: route("jobs", { ...params,
        cursor: page.next_cursor, prev: [...stack, params.cursor || ""].join(",") }) }, "Next") : null);
    replace(main, h("h1", {}, "Jobs"), lookupForm(), filterForm(params), submitForm(),
      table(["Id", "Task", "Queue", "State", "Failed attempts", "Created", "Last error"], page.jobs.map((j) => jobRow(j)),
        "No job matches."), pager);
    return {};
  },
};
