// The dashboard: a hash router over five pages, refreshing the visible one every 2 seconds
// while the tab is visible (a hidden tab costs the server nothing).

import { call, SIGNED, BASE } from "./api.js";
import { h, replace } from "./dom.js";
import overview from "./pages/overview.js";
import jobs from "./pages/jobs.js";
import job from "./pages/job.js";
import dlq from "./pages/dlq.js";
import queues from "./pages/queues.js";

const PAGES = { "": overview, jobs, job, dlq, queues };
const REFRESH_MS = 2000;
const main = document.getElementById("main");
let current = null;
let timer = null;

function parse() {
  const hash = window.location.hash.replace(/^#\/?/, "");
  const [path, search] = hash.split("?");
  const segments = path.split("/").filter(Boolean).map((s) => decodeURIComponent(s));
  return { name: segments[0] || "", args: segments.slice(1), params: Object.fromEntries(new URLSearchParams(search || "")) };
}

async function show() {
  stopRefresh();
  if (current && current.unmount) current.unmount();
  current = null;
  const { name, args, params } = parse();
  const page = PAGES[name] || overview;
  for (const a of document.querySelectorAll("#nav a")) {
    a.classList.toggle("active", a.dataset.page === (name === "job" ? "jobs" : name || "overview"));
  }
  replace(main, h("p", { class: "muted" }, "Loading..."));
  try {
    current = (await page.mount(main, args, params)) || {};
  } catch (error) {
    replace(main, h("p", { class: "error" }, `Could not load this page: ${error.message}`));
    return;
  }
  startRefresh();
}

function startRefresh() {
  if (!current || !current.refresh || document.visibilityState !== "visible") return;
  const live = document.getElementById("live");
  live.textContent = "live";
  let busy = false;
  timer = setInterval(async () => {
    if (busy) return; // the last refresh has not answered yet: skip a turn rather than pile up
    busy = true;
    try {
      await current.refresh();
      live.classList.remove("stale");
    } catch (error) {
      live.classList.add("stale");
      live.title = `Last update failed: ${error.message}`;
    } finally {
      busy = false;
    }
  }, REFRESH_MS);
}

function stopRefresh() {
  clearInterval(timer);
  timer = null;
  document.getElementById("live").textContent = "";
}

document.addEventListener("visibilitychange", () => {
  stopRefresh();
  if (document.visibilityState === "visible" && current && current.refresh) {
    current.refresh().catch(() => {});
    startRefresh();
  }
});
window.addEventListener("hashchange", show);

const logout = document.getElementById("logout");
if (SIGNED) {
  logout.hidden = false;
  logout.addEventListener("click", async () => {
    await call("POST", "/ui/logout").catch(() => {});
    window.location.assign(BASE + "/ui/login");
  });
}
show();
