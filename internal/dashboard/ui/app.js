import * as api from "./api.js";

const $ = (sel) => document.querySelector(sel);
const PHASES = ["prevalidation", "preparsing", "transforming", "parsing", "validation", "processing", "cleanup"];
const STAT_NAMES = ["total", "processed", "created", "updated", "unchanged", "deleted", "skipped", "failed", "warnings", "overwritten"];

// el builds an element: el("td", {class: "num"}, "12").
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "dataset") Object.assign(node.dataset, v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  node.append(...children.flat().filter((c) => c !== undefined && c !== null).map((c) => (c instanceof Node ? c : String(c))));
  return node;
}

const time = (t) => (t ? new Date(t).toLocaleString() : "—");
const count = (n) => (n ?? 0).toLocaleString();

function notice(message) {
  const n = $("#notice");
  n.textContent = message || "";
  n.hidden = !message;
}

function explain(err) {
  if (err instanceof api.ApiError) {
    if (err.status === 401) return `${err.message} — enter an API key above.`;
    const field = err.details && (err.details.field || err.details.parameter);
    return `${err.message}${err.code ? ` (${err.code}${field ? `, ${field}` : ""})` : ""}`;
  }
  return String(err && err.message ? err.message : err);
}

// ---- the views: #/imports, #/imports/<id>, #/new ----

let leaveView = () => {};

function route() {
  leaveView();
  leaveView = () => {};
  notice("");
  const [, view, id] = location.hash.split("/");
  for (const s of document.querySelectorAll("main > section")) s.hidden = true;
  if (view === "imports" && id) showDetail(decodeURIComponent(id));
  else if (view === "new") showForm();
  else showList();
}

// ---- list ----

let cursor = null;
let extended = false; // more pages shown: refreshing would drop them

async function loadList(append) {
  const status = $("#filter-status").value;
  const resource = $("#filter-resource").value;
  try {
    const page = await api.listImports({ status, resource, startingAfter: append ? cursor : "" });
    extended = append;
    const body = $("#imports-table tbody");
    if (!append) body.replaceChildren();
    for (const imp of page.data) body.append(importRow(imp));
    cursor = page.next_cursor;
    $("#more").hidden = !page.has_more;
    $("#list-empty").hidden = body.children.length > 0;
    notice("");
  } catch (err) {
    notice(explain(err));
  }
}

function importRow(imp) {
  const link = el("a", { href: `#/imports/${encodeURIComponent(imp.id)}` }, imp.id);
  return el("tr", { "data-testid": "import-row", dataset: { id: imp.id, status: imp.status } },
    el("td", {}, link),
    el("td", {}, imp.resource),
    el("td", {}, el("span", { class: `status status-${imp.status}` }, imp.status)),
    el("td", {}, imp.file?.name || ""),
    el("td", {}, time(imp.created_at)),
    el("td", { class: "num" }, `${count(imp.stats?.processed)} / ${count(imp.stats?.total)}`),
    el("td", { class: "num" }, count(imp.stats?.failed)));
}

function showList() {
  $("#view-list").hidden = false;
  loadList(false);
  const timer = setInterval(() => { if ($("#auto-refresh").checked && !extended) loadList(false); }, 3000);
  leaveView = () => clearInterval(timer);
}

// ---- one import, live ----

function showDetail(id) {
  $("#view-detail").hidden = false;
  $("#detail-id").textContent = id;
  for (const sel of ["#import-status", "#import-reason", "#rate", "#eta"]) $(sel).textContent = "";
  $("#import-reason").hidden = true;
  $("#stats").replaceChildren();
  $("#phases-table tbody").replaceChildren();
  $("#options").replaceChildren();
  $("#downloads").replaceChildren();
  $("#errors-table").hidden = true;
  $("#errors-empty").hidden = true;
  $("#errors-table tbody").replaceChildren();
  $("#interrupt").hidden = true;
  const rate = new RateMeter();
  let current = null;
  $("#show-errors").onclick = () => current && showErrors(current);
  $("#interrupt").onclick = async () => {
    $("#interrupt").disabled = true;
    try {
      await api.interruptImport(id);
      notice("Interrupt asked: the import stops at its next batch boundary.");
    } catch (err) {
      notice(explain(err));
      $("#interrupt").disabled = false;
    }
  };
  $("#retry").hidden = true;
  $("#retry").onclick = async () => {
    $("#retry").disabled = true;
    try {
      const child = await api.retryImport(id);
      location.hash = `#/imports/${encodeURIComponent(child.id)}`;
    } catch (err) {
      notice(explain(err));
    } finally {
      $("#retry").disabled = false;
    }
  };
  $("#revert-box").hidden = true;
  $("#revert").onclick = async () => {
    $("#revert").disabled = true;
    try {
      const child = await api.revertImport(id, { dryRun: $("#revert-dry-run").checked, force: $("#revert-force").checked });
      location.hash = `#/imports/${encodeURIComponent(child.id)}`;
    } catch (err) {
      notice(explain(err));
    } finally {
      $("#revert").disabled = false;
    }
  };
  $("#live").hidden = false;
  const stop = api.watchImport(id, (imp) => {
    current = imp;
    rate.add(imp);
    renderImport(imp, rate);
    if (api.TERMINAL.has(imp.status)) $("#live").hidden = true;
  }, () => {
    $("#live").hidden = true;
    // The stream could not start (unknown import, no key): say why.
    api.getImport(id).then((imp) => { current = imp; renderImport(imp, rate); }, (err) => notice(explain(err)));
  });
  leaveView = stop;
}

// progressOf is the share of the pipeline's work done: every phase runs the
// same batches, so the work is phases × batches.
function progressOf(imp) {
  const batches = Math.max(0, ...imp.phases.map((p) => p.batches_total || 0));
  if (!batches) return 0;
  const done = imp.phases.reduce((sum, p) => sum + Math.min(p.batches_done || 0, batches), 0);
  return done / (batches * PHASES.length);
}

// RateMeter turns the updates into rows per second through the whole
// pipeline and the time left, over the last 15 s of updates.
class RateMeter {
  constructor() { this.samples = []; }
  add(imp) {
    const now = performance.now() / 1000;
    this.samples.push({ t: now, p: progressOf(imp) });
    this.samples = this.samples.filter((s) => now - s.t <= 15);
  }
  // estimate is {rowsPerSecond, secondsLeft}, or null before two updates apart.
  estimate(imp) {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    const rows = imp.stats.total || imp.phases[0]?.rows_in || 0;
    if (!first || last.t - first.t < 0.5 || last.p <= first.p || !rows) return null;
    const perSecond = (last.p - first.p) / (last.t - first.t);
    return { rowsPerSecond: perSecond * rows, secondsLeft: (1 - last.p) / perSecond };
  }
}

function duration(seconds) {
  if (seconds < 60) return `${Math.ceil(seconds)} s`;
  const m = Math.floor(seconds / 60);
  return m < 60 ? `${m} min ${Math.round(seconds % 60)} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

function renderImport(imp, rate) {
  const status = $("#import-status");
  status.textContent = imp.status;
  status.className = `status status-${imp.status}`;
  $("#import-reason").hidden = !imp.reason;
  $("#import-reason").textContent = imp.reason ? `Reason: ${imp.reason}` : "";
  const terminal = api.TERMINAL.has(imp.status);
  $("#interrupt").hidden = terminal;
  if (terminal) $("#interrupt").disabled = false;
  $("#revert-box").hidden = !terminal || imp.dry_run;
  $("#retry").hidden = !terminal || !imp.stats.failed || imp.action === "revert";
  renderLineage(imp);

  // The server's percent never goes back; progressOf is for a server without it.
  const progress = imp.status === "completed" ? 1 : imp.progress ? imp.progress.percent / 100 : progressOf(imp);
  $("#overall").value = progress;
  $("#overall").textContent = `${Math.round(progress * 100)}%`;
  const est = terminal ? null : rate.estimate(imp);
  $("#rate").textContent = est ? `${Math.round(est.rowsPerSecond).toLocaleString()} rows/s` : "";
  $("#eta").textContent = est ? `· about ${duration(est.secondsLeft)} left` : "";
  if (terminal && imp.started_at && imp.completed_at) {
    const seconds = (Date.parse(imp.completed_at) - Date.parse(imp.started_at)) / 1000;
    if (seconds > 0) $("#rate").textContent = `${Math.round(imp.stats.processed / seconds).toLocaleString()} rows/s over ${duration(seconds)}`;
  }

  $("#stats").replaceChildren(...STAT_NAMES.flatMap((name) => [
    el("dt", {}, name),
    el("dd", { "data-testid": `stat-${name}` }, count(imp.stats[name])),
  ]));
  renderPhases(imp);
  renderOptions(imp);
  renderDownloads(imp);
}

function renderPhases(imp) {
  const times = imp.phases.flatMap((p) => [p.started_at, p.completed_at]).filter(Boolean).map(Date.parse);
  const start = Math.min(...times);
  const end = api.TERMINAL.has(imp.status) ? Math.max(...times) : Math.max(Date.now(), ...times);
  const span = Math.max(end - start, 1);
  $("#phases-table tbody").replaceChildren(...imp.phases.map((p) => {
    const from = p.started_at ? Date.parse(p.started_at) : null;
    const to = p.completed_at ? Date.parse(p.completed_at) : (from ? end : null);
    const bar = from === null ? "" : el("div", {
      class: `span status-${p.status}`,
      style: `left:${((from - start) / span) * 100}%;width:${Math.max(((to - from) / span) * 100, 0.5)}%`,
      title: `${time(p.started_at)} → ${time(p.completed_at)}`,
    });
    return el("tr", { "data-testid": "phase-row", dataset: { phase: p.name } },
      el("th", { scope: "row" }, p.name),
      el("td", {}, el("span", { class: `status status-${p.status}` }, p.status)),
      el("td", {}, el("progress", { max: p.batches_total || 1, value: p.batches_done || 0, "aria-label": `${p.name} batches` }),
        ` ${count(p.batches_done)} / ${count(p.batches_total)}`),
      el("td", { class: "num" }, count(p.rows_in)),
      el("td", { class: "num" }, count(p.rows_out)),
      el("td", { class: "num" }, count(p.rows_failed)),
      el("td", {}, time(p.started_at)),
      el("td", {}, time(p.completed_at)),
      el("td", { class: "timeline" }, bar));
  }));
}

// renderLineage links the import this one derives from (a revert's or a
// retry's parent) and the imports started from it.
function renderLineage(imp) {
  const link = (id) => el("a", { href: `#/imports/${encodeURIComponent(id)}`, "data-testid": "lineage-link" }, id);
  const parts = [];
  if (imp.parent_import_id) parts.push(`${imp.action === "revert" ? "Reverts" : "Retries"} `, link(imp.parent_import_id), ". ");
  const children = imp.children || [];
  if (children.length) parts.push("Started from it: ", ...children.flatMap((id, i) => (i ? [", ", link(id)] : [link(id)])), ".");
  $("#lineage").replaceChildren(...parts);
  $("#lineage").hidden = parts.length === 0;
}

function renderOptions(imp) {
  const f = imp.file || {};
  const rows = [
    ["resource", imp.resource], ["organization", imp.organization_id], ["mode", imp.mode], ["name", imp.name],
    ["file", f.name ? `${f.name} (${count(f.size)} bytes, ${f.content_type || "?"})` : ""],
    ["format", imp.format], ["encoding", f.encoding], ["delimiter", f.delimiter],
    ["action", imp.action], ["force", imp.force], ["duplicate handling", imp.duplicate_handling], ["upload mode", imp.upload_mode],
    ["error threshold", imp.error_threshold], ["skip errors", imp.skip_errors], ["dry run", imp.dry_run],
    ["column mapping", imp.column_mapping && Object.keys(imp.column_mapping).length ? JSON.stringify(imp.column_mapping) : ""],
    ["parent resource id", imp.parent_resource_id], ["reference", imp.reference], ["reference origin", imp.reference_origin],
    ["metadata", imp.metadata && Object.keys(imp.metadata).length ? JSON.stringify(imp.metadata) : ""],
    ["sheet", imp.sheet], ["deadline", imp.deadline && time(imp.deadline)],
    ["created", `${time(imp.created_at)}${imp.created_by ? ` by ${imp.created_by}` : ""}`],
    ["started", time(imp.started_at)], ["completed", time(imp.completed_at)],
    ["interrupted", imp.interrupted_at && time(imp.interrupted_at)], ["expires", imp.expires_at && time(imp.expires_at)],
  ].filter(([, v]) => v !== undefined && v !== null && v !== "");
  $("#options").replaceChildren(...rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, String(v))]));
}

function renderDownloads(imp) {
  const files = [
    ["errors_csv", "Failed rows (CSV, fix and import again)", `${imp.id}-errors.csv`],
    ["errors_json", "Failed rows (JSON)", `${imp.id}-errors.json`],
    ["upload_csv", "Original file as CSV", `${imp.id}-upload.csv`],
    ["upload_json", "Original file as JSON", `${imp.id}-upload.json`],
  ].filter(([link]) => imp.links?.[link]);
  $("#downloads").replaceChildren(...files.map(([link, label, filename]) => {
    const a = el("a", { href: imp.links[link], "data-testid": `download-${link}`, download: filename }, label);
    a.addEventListener("click", (ev) => {
      if (!api.settings.key) return; // the plain link works without a key
      ev.preventDefault();
      api.download(imp.links[link], filename).catch((err) => notice(explain(err)));
    });
    return el("li", {}, a);
  }));
}

async function showErrors(imp) {
  try {
    const rows = await api.rowErrors(imp);
    const body = $("#errors-table tbody");
    body.replaceChildren(...rows.map((r) => el("tr", { "data-testid": "error-row", dataset: { row: r.row } },
      el("td", { class: "num" }, r.row),
      el("td", {}, r.phase),
      el("td", {}, el("code", {}, r.code)),
      el("td", {}, r.field || ""),
      el("td", {}, r.message),
      el("td", {}, cells(r.data)))));
    $("#errors-table").hidden = rows.length === 0;
    $("#errors-empty").hidden = rows.length > 0;
  } catch (err) {
    notice(explain(err));
  }
}

// cells shows a failed row's data: its cells under their headers (CSV), or
// the record's members (JSON).
function cells(data) {
  if (data === null || data === undefined) return "";
  if (typeof data !== "object") return el("code", {}, JSON.stringify(data));
  return el("dl", { class: "cells" }, Object.entries(data).flatMap(([k, v]) => [
    el("dt", {}, k), el("dd", {}, typeof v === "string" ? v : JSON.stringify(v)),
  ]));
}

// ---- the upload form ----

async function loadResources() {
  try {
    const { data } = await api.listResources();
    const names = data.map((r) => r.name);
    const formSelect = $("#f-resource");
    const chosen = formSelect.value;
    formSelect.replaceChildren(...names.map((n) => el("option", { value: n }, n)));
    if (names.includes(chosen)) formSelect.value = chosen;
    const filter = $("#filter-resource");
    const filtered = filter.value;
    filter.replaceChildren(el("option", { value: "" }, "any"), ...names.map((n) => el("option", { value: n }, n)));
    filter.value = names.includes(filtered) ? filtered : "";
  } catch (err) {
    notice(explain(err));
  }
}

function showForm() {
  $("#view-new").hidden = false;
  $("#form-error").hidden = true;
}

// formBody is the create request: the file and every option given (an empty
// field is the option's default, so it is left out).
function formBody(form) {
  const body = new FormData();
  if (api.settings.org) body.set("organization_id", api.settings.org);
  for (const [name, value] of new FormData(form)) {
    if (name === "file") continue; // last: upload_mode must come first
    if (typeof value === "string" && value.trim() === "") continue;
    if (name === "deadline") body.set(name, new Date(value).toISOString());
    else body.set(name, value);
  }
  body.set("file", $("#f-file").files[0]);
  return body;
}

async function submitImport(ev) {
  ev.preventDefault();
  const form = ev.target;
  const error = $("#form-error");
  error.hidden = true;
  $("#submit-import").disabled = true;
  try {
    const imp = await api.createImport(formBody(form));
    location.hash = `#/imports/${encodeURIComponent(imp.id)}`;
  } catch (err) {
    error.textContent = explain(err);
    error.hidden = false;
  } finally {
    $("#submit-import").disabled = false;
  }
}

// ---- start ----

function start() {
  $("#org").value = api.settings.org;
  $("#api-key").value = api.settings.key;
  $("#settings").addEventListener("submit", (ev) => {
    ev.preventDefault();
    api.settings.save($("#org").value, $("#api-key").value);
    loadResources();
    route();
  });
  $("#filters").addEventListener("change", () => loadList(false));
  $("#filters").addEventListener("submit", (ev) => ev.preventDefault());
  $("#refresh").addEventListener("click", () => loadList(false));
  $("#more").addEventListener("click", () => loadList(true));
  $("#upload-form").addEventListener("submit", submitImport);
  window.addEventListener("hashchange", route);
  loadResources();
  route();
  document.body.dataset.ready = "true";
}

start();
