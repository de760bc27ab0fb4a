// The map toolbar's pickers: projection, clustering and colour. A change updates the view and
// asks the map to reload (onChange) or recolour.

import { $, setOptions } from "../dom.js";
import { analysisTitle, fixed, humanName } from "../format.js";
import { ACTIVE } from "../jobs.js";
import { registryOf, state, writeView } from "./context.js";
import { renderMapStatus } from "./map.js";
import { updateCompareLink } from "./header.js";

function pickerOptions(items, kind, metricText) {
  const registry = registryOf(kind);
  return items
    .slice()
    .reverse()
    .map((item) => {
      const active = ACTIVE.has(item.status);
      const failed = !active && item.status !== "succeeded";
      const suffix = active ? ` — ${item.status}…` : failed ? ` — ${item.status}` : metricText(item);
      return { value: item.id, text: `${analysisTitle(item, registry)}${suffix}`, disabled: item.status !== "succeeded", title: item.id };
    });
}

export function populatePickers() {
  if (!state.run) return;
  const projectionSelect = $("#projection-select");
  const clusteringSelect = $("#clustering-select");
  const colorSelect = $("#color-select");
  const projections = pickerOptions(state.run.projections, "projections", (item) => (item.metrics && typeof item.metrics.trustworthiness === "number" ? ` (trust ${fixed(item.metrics.trustworthiness, 2)})` : ""));
  setOptions(projectionSelect, projections.length ? projections : [{ value: "", text: "none yet", disabled: true }]);
  if (state.view.projection) projectionSelect.value = state.view.projection;
  const clusterings = pickerOptions(state.run.clusterings, "clusterings", (item) => (item.metrics && typeof item.metrics.n_clusters === "number" && !("n_clusters" in (item.params || {}) && item.params.n_clusters !== null) ? ` (${item.metrics.n_clusters} clusters)` : ""));
  setOptions(clusteringSelect, clusterings.length ? clusterings : [{ value: "", text: "none yet", disabled: true }]);
  if (state.view.clustering) clusteringSelect.value = state.view.clustering;
  const points = state.points;
  const colors = [];
  if (!points || points.label) colors.push({ value: "label", text: "label", disabled: !points });
  if (points && points.cluster) colors.push({ value: "cluster", text: "cluster" });
  for (const name of Object.keys((points && points.values) || {})) colors.push({ value: `value:${name}`, text: humanName(name) });
  for (const name of Object.keys((points && points.categories) || {})) colors.push({ value: `category:${name}`, text: name });
  colors.push({ value: "none", text: "nothing" });
  setOptions(colorSelect, colors);
  if (state.view.color) colorSelect.value = state.view.color;
  updateCompareLink();
}

/** onReload(): the points must be fetched again; onRecolor(): only the colours change. */
export function bindPickers({ onReload, onRecolor }) {
  $("#projection-select").addEventListener("change", (event) => {
    state.view.projection = event.target.value || null;
    state.followDefault = false;
    state.mapNotice = null;
    renderMapStatus();
    writeView();
    onReload();
  });
  $("#clustering-select").addEventListener("change", (event) => {
    state.view.clustering = event.target.value || null;
    state.view.color = "cluster"; // picking a clustering is asking to see it
    writeView();
    onReload();
  });
  $("#color-select").addEventListener("change", async (event) => {
    state.view.color = event.target.value;
    writeView();
    await onRecolor();
  });
}
