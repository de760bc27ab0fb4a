// The run's heading, status badge, error banner and compare link. Follows the run record and the view.

import { enc } from "../api.js";
import { $ } from "../dom.js";
import { count, humanName } from "../format.js";
import { registryOf, runId, state } from "./context.js";

export function methodLabel(name) {
  const info = registryOf("training")[name];
  return info ? info.label : name;
}

export function showStatus(status) {
  const badge = $("#run-status");
  badge.hidden = false;
  badge.className = `badge status-${status}`;
  badge.textContent = status;
}

export function renderHeader() {
  const run = state.run;
  if (!run) return;
  const config = run.config || {};
  // An import is named by its file (or --name); its dataset is only where its images come from.
  const heading = config.kind === "imported" ? `${config.name} (imported${config.dataset ? `, images of ${config.dataset}` : ""})`
    : `${methodLabel(run.method)} on ${run.dataset}`;
  $("#run-heading").textContent = heading;
  document.title = `${heading} · ${run.id} · latentmap`;
  showStatus(run.status);
  for (const link of document.querySelectorAll(".export-link")) link.hidden = run.status !== "succeeded";
  const parts = [];
  if (config.epochs) parts.push(`${config.epochs} epochs`);
  if (config.embedding_dim) parts.push(`embedding ${config.embedding_dim}`);
  if (config.batch_size) parts.push(`batch ${config.batch_size}`);
  if (config.lr) parts.push(`lr ${config.lr}`);
  if (config.seed !== undefined) parts.push(`seed ${config.seed}`);
  for (const [key, value] of Object.entries(config.method_params || {})) parts.push(`${humanName(key).toLowerCase()} ${value}`);
  if (config.kind === "imported") parts.push(`from ${config.format}`);
  if (run.embedding_shape) parts.push(`${count(run.embedding_shape[0])} × ${run.embedding_shape[1]} embedding`);
  $("#run-subtitle").textContent = parts.join(" · ");
}

export function showError(message) {
  const box = $("#run-error");
  box.hidden = !message;
  box.textContent = message || "";
}

export function updateCompareLink() {
  const link = $("#compare-link");
  const finished = state.run ? state.run.clusterings.filter((item) => item.status === "succeeded") : [];
  link.hidden = finished.length === 0;
  if (!finished.length) return;
  const a = state.view.clustering || finished[finished.length - 1].id;
  const b = finished.find((item) => item.id !== a);
  const query = new URLSearchParams({ a });
  if (b) query.set("b", b.id);
  if (state.view.projection) query.set("projection", state.view.projection);
  link.href = `/runs/${enc(runId)}/compare?${query}`;
}

/** The header follows the run record and the compare link follows the view. */
export function bindHeader() {
  document.addEventListener("latentmap:run", renderHeader);
  document.addEventListener("latentmap:view", updateCompareLink);
}
