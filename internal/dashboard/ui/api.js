// The /v1 API as the page uses it: who it acts for (organization, API key),
// where reads and writes go, and the calls.
//
// Reads go to the page's own origin: the projector (or the all-in-one
// server) that served it. Writes go there too, which is right behind an
// ingress that routes writes to the gateway (deploy/compose/api.conf) and on
// the all-in-one server; `?writes=<gateway base URL>` in the page's address
// sends them elsewhere (that origin must then allow this one: CORS).

const store = window.sessionStorage;

export const settings = {
  get org() { return store.getItem("inlet.org") || ""; },
  get key() { return store.getItem("inlet.key") || ""; },
  save(org, key) {
    store.setItem("inlet.org", org.trim());
    store.setItem("inlet.key", key.trim());
  },
};

const readBase = "";
const writeBase = (new URLSearchParams(location.search).get("writes") || "").replace(/\/+$/, "");

// ApiError carries the {"error": {code, message, details}} of an answer.
export class ApiError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.message || `HTTP ${status}`);
    this.status = status;
    this.code = e.code || "";
    this.details = e.details || null;
  }
}

function headers() {
  const h = {};
  if (settings.key) h.Authorization = `Bearer ${settings.key}`;
  if (settings.org) h["X-Organization-Id"] = settings.org;
  return h;
}

async function call(method, url, body) {
  const h = headers();
  if (typeof body === "string") h["Content-Type"] = "application/json";
  const resp = await fetch(url, { method, headers: h, body });
  const text = await resp.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { /* not JSON: reported below */ }
  if (!resp.ok) throw new ApiError(resp.status, json);
  return json;
}

export function listImports({ status, resource, startingAfter, limit = 25 }) {
  const q = new URLSearchParams({ limit: String(limit) });
  if (status) q.set("status", status);
  if (resource) q.set("resource", resource);
  if (startingAfter) q.set("starting_after", startingAfter);
  return call("GET", `${readBase}/v1/imports?${q}`);
}

export const getImport = (id) => call("GET", `${readBase}/v1/imports/${encodeURIComponent(id)}`);
export const listResources = () => call("GET", `${readBase}/v1/resources`);
export const rowErrors = (imp) => call("GET", `${readBase}${imp.links.errors_json}`);
export const createImport = (form) => call("POST", `${writeBase}/v1/imports`, form);
export const interruptImport = (id) =>
  call("POST", `${writeBase}/v1/imports/${encodeURIComponent(id)}/interrupt`);
// retryImport starts a child import of import id's failed rows, as they were.
export const retryImport = (id) =>
  call("POST", `${writeBase}/v1/imports/${encodeURIComponent(id)}/retry`, JSON.stringify({}));
// revertImport starts a child import that puts back what import id changed.
export const revertImport = (id, { dryRun, force }) =>
  call("POST", `${writeBase}/v1/imports/${encodeURIComponent(id)}/revert`,
    JSON.stringify({ dry_run: dryRun, force }));

// watchImport calls onImport with the import object now and on every change
// until it is terminal. An EventSource sends no headers: the key goes in the
// query, which the server accepts on this route alone.
export function watchImport(id, onImport, onTrouble) {
  const q = new URLSearchParams();
  if (settings.key) q.set("access_token", settings.key);
  if (settings.org) q.set("organization_id", settings.org);
  const source = new EventSource(`${readBase}/v1/imports/${encodeURIComponent(id)}/events?${q}`);
  source.addEventListener("import", (ev) => {
    const imp = JSON.parse(ev.data);
    // The server ends the stream after a terminal state; closing here keeps
    // EventSource from connecting again.
    if (TERMINAL.has(imp.status)) source.close();
    onImport(imp);
  });
  source.onerror = () => { if (source.readyState === EventSource.CLOSED) onTrouble(); };
  return () => source.close();
}

export const TERMINAL = new Set(["completed", "failed", "interrupted", "timed_out", "expired"]);

// download saves url with the request's key (a plain link could not send it).
export async function download(url, filename) {
  const resp = await fetch(`${readBase}${url}`, { headers: headers() });
  if (!resp.ok) {
    let body = null;
    try { body = await resp.json(); } catch { /* no JSON body */ }
    throw new ApiError(resp.status, body);
  }
  const href = URL.createObjectURL(await resp.blob());
  const a = Object.assign(document.createElement("a"), { href, download: filename });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(href), 60_000);
}
