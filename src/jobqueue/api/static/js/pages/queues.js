// Queues and schedules: pause and resume, change limits, run a schedule now.

import { call, get, post, seg } from "../api.js";
import { h, link, number, replace, table, when } from "../dom.js";
import { flash } from "../flash.js";
import { limitsText, pauseButton } from "./overview.js";

const LIMIT_FIELDS = [
  ["rate", "Rate", "100/s", "text"], ["burst", "Burst", "", "number"], ["concurrency", "Concurrency", "", "number"],
  ["key_rate", "Per-key rate", "5/s", "text"], ["key_burst", "Per-key burst", "", "number"],
  ["key_concurrency", "Per-key concurrency", "", "number"],
];

function limitsForm(queue, limits, after) {
  const inputs = {};
  const cells = LIMIT_FIELDS.map(([name, label, placeholder, type]) => {
    const value = limits && limits[name] !== null && limits[name] !== undefined ? limits[name] : "";
    inputs[name] = h("input", { name, type, min: type === "number" ? 1 : null, value, placeholder, size: 7 });
    return h("label", {}, label, inputs[name]);
  });
  const save = async (event) => {
    event.preventDefault();
    const body = {};
    for (const [name, , , type] of LIMIT_FIELDS) {
      const raw = inputs[name].value.trim();
      if (raw !== "") body[name] = type === "number" ? Number(raw) : raw;
    }
    try {
      await call("PUT", `/queues/${seg(queue)}/limits`, body);
      flash(`Limits of ${queue} saved.`);
    } catch (error) {
      flash(error.message, "error");
    }
    await after();
  };
  const clearAll = async () => {
    try {
      await call("DELETE", `/queues/${seg(queue)}/limits`);
      flash(`Limits of ${queue} cleared.`);
    } catch (error) {
      flash(error.message, "error");
    }
    await after();
  };
  return h("form", { class: "filters limits", "data-limits": queue, onsubmit: save }, cells,
    h("button", { type: "submit" }, "Save"), h("button", { type: "button", class: "secondary", onclick: clearAll }, "Clear"));
}

function scheduleRow(s, after) {
  const act = (verb, message) => async () => {
    try {
      const answer = await post(`/schedules/${seg(s.name)}/${verb}`);
      flash(verb === "run" ? `Schedule ${s.name} ran: job ${answer.id}.` : message);
    } catch (error) {
      flash(error.message, "error");
    }
    await after();
  };
  return h("tr", { "data-schedule": s.name }, h("td", {}, s.name), h("td", {}, s.task),
    h("td", {}, s.queue || "its task's"), h("td", {}, s.when), h("td", {}, s.paused ? "paused" : "active"),
    h("td", {}, when(s.last_tick), s.last_job_id ? [" ", link(["job", s.last_job_id], {}, "job")] : null),
    h("td", {}, when(s.next_tick)),
    h("td", { class: "nowrap" },
      h("button", { type: "button", class: "secondary", onclick: act(s.paused ? "resume" : "pause", `Schedule ${s.name} ${s.paused ? "resumed" : "paused"}.`) },
        s.paused ? "Resume" : "Pause"),
      h("button", { type: "button", onclick: act("run") }, "Run now")));
}

export default {
  async mount(main) {
    const render = async () => {
      const data = await get("/ui/api/overview?fresh=1");
      replace(main, h("h1", {}, "Queues"),
        table(["Queue", "Waiting / capacity", "Running", "Limits now", "Change limits", ""], data.queues.map((q) =>
          h("tr", { "data-queue": q.name }, h("td", {}, link("jobs", { queue: q.name }, q.name),
            q.paused ? h("span", { class: "badge s-paused" }, "paused") : null),
          h("td", { class: "num" }, number(q.depth), q.capacity !== null ? ` / ${number(q.capacity)}` : ""),
          h("td", { class: "num" }, number(q.states.PROCESSING)), h("td", { class: "small" }, limitsText(q.limits) || "none"),
          h("td", {}, limitsForm(q.name, q.limits, render)), h("td", {}, pauseButton(q, render)))), "No queues yet."),
        h("h1", {}, "Schedules"),
        table(["Name", "Task", "Queue", "When", "State", "Last tick", "Next tick", ""], data.schedules.map((s) => scheduleRow(s, render)),
          "No periodic schedules: declare them in code with app.schedule() or @app.periodic()."));
    };
    await render();
    return {};
  },
};
