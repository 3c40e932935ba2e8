// Building the page. Every value from the server goes in as text (a text node or an attribute
// set through the DOM), never as markup, so a job's payload, name or error cannot add elements
// or scripts. Links are built only from our own routes.

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "class") el.className = value;
    else if (name === "href") el.setAttribute("href", safeHref(value));
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

// Only this page's own routes: "#/..." built by route() below.
function safeHref(value) {
  const text = String(value);
  return text.startsWith("#/") ? text : "#/";
}

// A route of this page: path segments (each encoded) and query parameters.
export function route(path, params) {
  const segments = Array.isArray(path) ? path : [path];
  const href = "#/" + segments.map((p) => encodeURIComponent(p)).join("/");
  const query = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) if (v !== null && v !== undefined && v !== "") query.set(k, v);
  const text = query.toString();
  return text ? `${href}?${text}` : href;
}

export function link(path, params, ...children) {
  return h("a", { href: route(path, params) }, ...children);
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export function replace(el, ...children) {
  clear(el);
  append(el, children);
  return el;
}

export function badge(state) {
  return h("span", { class: `badge s-${String(state).toLowerCase()}` }, String(state).replace("_", " "));
}

export function number(n) {
  return n === null || n === undefined ? "-" : Number(n).toLocaleString("en-US");
}

export function pretty(value) {
  if (value === undefined) return "";
  try {
    return JSON.stringify(value, null, 2);
  } catch {
    return String(value);
  }
}

export function when(iso) {
  if (!iso) return h("span", { class: "muted" }, "-");
  return h("time", { datetime: iso, title: iso }, ago(iso));
}

export function ago(iso) {
  const seconds = (Date.now() - Date.parse(iso)) / 1000;
  if (!Number.isFinite(seconds)) return String(iso);
  const future = seconds < 0;
  const s = Math.abs(seconds);
  const text = s < 1 ? "now" : s < 90 ? `${Math.round(s)} s` : s < 5400 ? `${Math.round(s / 60)} min` :
    s < 172800 ? `${Math.round(s / 3600)} h` : `${Math.round(s / 86400)} d`;
  if (text === "now") return text;
  return future ? `in ${text}` : `${text} ago`;
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "-";
  if (seconds === 0) return "0";
  if (seconds < 0.001) return `${(seconds * 1e6).toFixed(0)} µs`;
  if (seconds < 1) return `${(seconds * 1000).toFixed(seconds < 0.01 ? 2 : 0)} ms`;
  return `${seconds.toFixed(seconds < 10 ? 2 : 0)} s`;
}

export function table(headers, rows, empty) {
  if (!rows.length) return h("p", { class: "muted empty" }, empty || "Nothing here.");
  return h("table", {},
    h("thead", {}, h("tr", {}, headers.map((t) => h("th", {}, t)))),
    h("tbody", {}, rows));
}
