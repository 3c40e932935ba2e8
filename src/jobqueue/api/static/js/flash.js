// The status line under the header: what an action did, or why it failed.

import { h, replace } from "./dom.js";

let timer = null;

export function flash(message, kind) {
  const box = document.getElementById("flash");
  replace(box, h("div", { class: `flash ${kind || "ok"}` }, message));
  clearTimeout(timer);
  timer = setTimeout(() => replace(box), 8000);
}
