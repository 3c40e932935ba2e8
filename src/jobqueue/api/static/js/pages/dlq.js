// The dead-letter queue: replay or purge one job, the selected ones, or all that match a filter,
// each after a confirmation.

import { call, get, post, query, seg } from "../api.js";
import { confirmed } from "../confirm.js";
import { h, link, number, replace, route, table, when } from "../dom.js";
import { flash } from "../flash.js";

const PAGE = 50;

async function eachJob(ids, action) {
  let done = 0;
  const failures = [];
  for (const id of ids) {
    try {
      await action(id);
      done += 1;
    } catch (error) {
      failures.push(`${id}: ${error.message}`);
    }
  }
  if (failures.length) throw new Error(`${done} done; ${failures.length} failed (${failures[0]})`);
  return done;
}

const replayOne = (id) => post(`/dlq/${seg(id)}/retry`);
const purgeOne = (id) => call("DELETE", `/jobs/${seg(id)}`);

export default {
  async mount(main, args, params) {
    const filter = { queue: params.queue || null, task: params.task || null };
    const reload = async () => { await render(); };
    const render = async () => {
      const [page, stats] = await Promise.all([
        get(`/jobs${query({ state: "DEAD_LETTERED", queue: params.queue, task: params.task, cursor: params.cursor, limit: PAGE })}`),
        get("/dlq?limit=1"),
      ]);
      const boxes = [];
      const selected = () => boxes.filter((b) => b.checked).map((b) => b.value);
      const rows = page.jobs.map((job) => {
        const box = h("input", { type: "checkbox", value: job.id, "aria-label": `select ${job.id}` });
        boxes.push(box);
        return h("tr", { "data-job": job.id }, h("td", {}, box),
          h("td", { class: "mono" }, link(["job", job.id], {}, job.id)), h("td", {}, job.task), h("td", {}, job.queue),
          h("td", { class: "num" }, job.retry_count), h("td", {}, when(job.finished_at)),
          h("td", { class: "error-text" }, job.error || ""),
          h("td", { class: "nowrap" },
            h("button", { type: "button", class: "small-button", "data-action": "replay", onclick: () => confirmed(
              `Replay job ${job.id}?`, async () => { await replayOne(job.id); return "Job replayed."; }, flash, reload) }, "Replay"),
            h("button", { type: "button", class: "small-button danger", "data-action": "purge", onclick: () => confirmed(
              `Delete job ${job.id} for good?`, async () => { await purgeOne(job.id); return "Job deleted."; }, flash, reload) }, "Purge")));
      });
      const all = h("input", { type: "checkbox", "aria-label": "select all", onchange: (e) => boxes.forEach((b) => { b.checked = e.target.checked; }) });
      const described = [filter.queue && `queue ${filter.queue}`, filter.task && `task ${filter.task}`].filter(Boolean).join(", ");
      const matching = described ? `every dead-lettered job of ${described}` : `all ${number(stats.count)} dead-lettered jobs`;
      const body = { ...Object.fromEntries(Object.entries(filter).filter(([, v]) => v)), all: !described };
      const queue = h("input", { name: "queue", value: params.queue || "", placeholder: "any" });
      const task = h("input", { name: "task", value: params.task || "", placeholder: "any" });
      replace(main, h("h1", {}, "Dead letters ", h("span", { class: "muted" }, `(${number(stats.count)})`)),
        h("form", { class: "filters", onsubmit: (e) => { e.preventDefault();
          window.location.hash = route("dlq", { queue: queue.value.trim(), task: task.value.trim() }); } },
          h("label", {}, "Queue", queue), h("label", {}, "Task", task), h("button", { type: "submit" }, "Filter"),
          h("a", { class: "button secondary", href: "#/dlq" }, "Clear")),
        h("div", { class: "actions" },
          h("button", { type: "button", id: "replay-selected", onclick: () => {
            const ids = selected();
            if (!ids.length) return flash("Select jobs first.", "error");
            return confirmed(`Replay ${ids.length} selected jobs?`, async () => `${await eachJob(ids, replayOne)} jobs replayed.`, flash, reload);
          } }, "Replay selected"),
          h("button", { type: "button", class: "danger", id: "purge-selected", onclick: () => {
            const ids = selected();
            if (!ids.length) return flash("Select jobs first.", "error");
            return confirmed(`Delete ${ids.length} selected jobs for good?`, async () => `${await eachJob(ids, purgeOne)} jobs deleted.`, flash, reload);
          } }, "Purge selected"),
          h("button", { type: "button", id: "replay-all", onclick: () => confirmed(`Replay ${matching}?`, async () => {
            const r = await post("/dlq/replay", body);
            return `${r.replayed} replayed${r.stayed ? `, ${r.stayed} stayed (queue full)` : ""}.`;
          }, flash, reload) }, "Replay all matching"),
          h("button", { type: "button", class: "danger", id: "purge-all", onclick: () => confirmed(`Delete ${matching} for good?`,
            async () => `${(await post("/dlq/purge", body)).purged} jobs deleted.`, flash, reload) }, "Purge all matching")),
        table([all, "Id", "Task", "Queue", "Attempts", "Dead since", "Error", ""], rows, "The dead-letter queue is empty."),
        page.next_cursor ? h("div", { class: "pager" }, h("a", { class: "button secondary",
          href: route("dlq", { ...params, cursor: page.next_cursor }) }, "Next")) : null);
    };
    await render();
    return {};
  },
};
