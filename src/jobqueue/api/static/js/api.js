// Calls to the API of the server that served this page. A request that changes state carries
// the session's CSRF token, read from the page's own HTML.

const meta = (name) => document.querySelector(`meta[name="${name}"]`)?.getAttribute("content") || "";
export const BASE = meta("jobqueue-base");
export const SIGNED = meta("jobqueue-signed") === "True";
const CSRF = meta("jobqueue-csrf");

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export async function call(method, path, body) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") headers["X-CSRF-Token"] = CSRF;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(BASE + path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin", redirect: "manual",
    });
  } catch (error) {
    throw new ApiError(0, `the server did not answer (${error.message})`);
  }
  if (response.type === "opaqueredirect" || response.status === 401) {
    window.location.assign(BASE + "/ui/login");
    throw new ApiError(401, "signed out");
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) throw new ApiError(response.status, (data && data.error) || `HTTP ${response.status}`);
  return data;
}

export const get = (path) => call("GET", path);
export const post = (path, body) => call("POST", path, body);

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined && v !== "") q.set(k, v);
  const text = q.toString();
  return text ? `?${text}` : "";
}

export const seg = encodeURIComponent;
