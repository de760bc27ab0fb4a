// The run page's shared context: which run, the page state every panel reads, the view in the
// query string, and the run record. Panels change the view with writeView() and announce a new
// run record with refreshRun(); both fire events (`latentmap:view`, `latentmap:run`) on document.

import { api, enc } from "../api.js";
import { $ } from "../dom.js";

export const runId = $("#run-page").dataset.runId;
export const runPath = `/api/runs/${enc(runId)}`;
window.__latentmap = window.__latentmap || {};

export const state = {
  run: null,
  dataset: null, // GET /api/datasets/{name}
  atlas: null,
  methods: null,
  points: null,
  view: readView(),
  // Whether the map follows the run's default view (the newest finished projection): true until the
  // person picks a projection (in the URL or the picker), so the quick PCA map gives way to UMAP.
  followDefault: !new URLSearchParams(location.search).get("projection"),
  mapNotice: null, // why the map shown is not the one asked for (a failed projection), or null
  followers: new Map(), // job id → follower
  projectionProgress: new Map(), // projection id → fraction done (null while queued), while its job runs
};

/** performance.mark with our prefix; the bench reads them to say where page-load time goes. */
export function mark(name) {
  if (!performance.getEntriesByName(`latentmap:${name}`).length) performance.mark(`latentmap:${name}`);
}

function readView() {
  const query = new URLSearchParams(location.search);
  const point = query.get("point");
  return {
    projection: query.get("projection") || null,
    clustering: query.get("clustering") || null,
    color: query.get("color") || null,
    point: point !== null && /^\d+$/.test(point) ? Number(point) : null,
  };
}

export function writeView() {
  const query = new URLSearchParams();
  const view = state.view;
  if (view.projection) query.set("projection", view.projection);
  if (view.clustering) query.set("clustering", view.clustering);
  if (view.color) query.set("color", view.color);
  if (view.point !== null) query.set("point", String(view.point));
  const text = query.toString();
  history.replaceState(null, "", text ? `${location.pathname}?${text}` : location.pathname);
  document.dispatchEvent(new CustomEvent("latentmap:view"));
}

export async function refreshRun() {
  state.run = await api.get(runPath);
  window.__latentmap.run = state.run;
  document.dispatchEvent(new CustomEvent("latentmap:run"));
  return state.run;
}

/** The /api/methods registry of one kind ("training", "projections", "clusterings"). */
export function registryOf(kind) {
  return (state.methods && state.methods[kind]) || {};
}
