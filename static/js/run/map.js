// The map panel: loads the points payload for the view, draws it (mapview.js), hover cards from the
// image atlas, the lasso/box selection and the overlay and status line over the map.
// configureMap({ selectPoint }) tells it what a click on a point opens.

import { api, enc } from "../api.js";
import { Atlas } from "../atlas.js";
import { decodePoints } from "../decode.js";
import { $, toast } from "../dom.js";
import { count, fixed, methodName } from "../format.js";
import { HoverCard } from "../hovercard.js";
import { ACTIVE } from "../jobs.js";
import { coloringFor } from "../map-traces.js";
import { bindModes, MapView } from "../mapview.js";
import { SelectionPanel } from "../selection.js";
import { mark, runId, runPath, state, writeView } from "./context.js";
import { populatePickers } from "./pickers.js";
import { renderScores } from "./scores.js";
import { switchTab } from "./tabs.js";

/** The map's parts, made when the first points arrive. */
export const map = { view: null, hoverCard: null, selection: null };
const handlers = { selectPoint: async () => {}, backgroundClick: () => {} };
let pointRequest = 0;

/** selectPoint(index): a click on a point; backgroundClick(x, y): a click away from every point. */
export function configureMap({ selectPoint, backgroundClick }) {
  handlers.selectPoint = selectPoint;
  handlers.backgroundClick = backgroundClick;
}

/** The message over the map area: text (null hides it), a progress fraction, a spinner while waiting. */
export function overlay(text, fraction, { waiting = true } = {}) {
  const box = $("#map-overlay");
  box.hidden = text === null;
  if (text === null) return;
  $("#map-overlay-text").textContent = text;
  $("#map-overlay .spinner").hidden = !waiting;
  const bar = $("#map-overlay-progress");
  bar.hidden = fraction === undefined || fraction === null;
  if (!bar.hidden) bar.querySelector(".progress-bar").style.width = `${(fraction * 100).toFixed(1)}%`;
}

/**
 * The line over the map that says it is a preview while a better projection is computed
 * ("improving…"), or why the better one is missing. Hidden when the map shown is final.
 */
export function renderMapStatus() {
  const line = $("#map-status");
  const shown = state.points && state.points.projection;
  const active = state.run && state.followDefault && shown ? state.run.projections.filter((item) => ACTIVE.has(item.status) && item.id !== shown.id) : [];
  let text = null;
  if (active.length) {
    const next = active[active.length - 1];
    const fraction = state.projectionProgress.get(next.id);
    const done = typeof fraction === "number" ? ` ${Math.round(fraction * 100)}%` : "";
    text = `Quick ${methodName(shown.method)} map. Improving: computing ${methodName(next.method)}…${done}`;
  } else if (state.mapNotice) {
    text = state.mapNotice;
  }
  line.hidden = text === null;
  const lineState = active.length ? "improving" : state.mapNotice ? "notice" : "final";
  const states = (window.__latentmap.mapStates ||= []); // the line's states in order (the tests read it)
  if (states[states.length - 1] !== lineState) states.push(lineState);
  line.dataset.state = lineState;
  line.querySelector(".spinner").hidden = !active.length;
  $("#map-status-text").textContent = text || "";
}

export function pointsQuery(view) {
  const query = new URLSearchParams();
  if (view.projection) query.set("projection", view.projection);
  if (view.clustering) query.set("clustering", view.clustering);
  return query.toString();
}

export async function loadPoints({ keepView = true } = {}) {
  const view = state.view;
  const query = pointsQuery(view);
  const ticket = ++pointRequest;
  if (!map.view || !map.view.drawnOnce) overlay("Loading the map…");
  let payload;
  try {
    const prefetched = state.prefetch && state.prefetch.query === query ? state.prefetch.promise : null;
    state.prefetch = null;
    payload = await (prefetched || api.get(`${runPath}/points?${query}`));
  } catch (error) {
    if (ticket !== pointRequest) return;
    if (error.status === 404 && (view.projection || view.clustering)) {
      toast(`${error.message}; showing the newest instead`, "error", 8000);
      view.projection = null;
      view.clustering = null;
      writeView();
      return loadPoints();
    }
    overlay(error.message, null, { waiting: false });
    return;
  }
  if (ticket !== pointRequest) return;
  const points = decodePoints(payload);
  mark("points-decoded");
  const previousProjection = state.points && state.points.projection ? state.points.projection.id : null;
  state.points = points;
  view.projection = points.projection ? points.projection.id : null;
  view.clustering = points.clustering ? points.clustering.id : null;
  if (!view.color || !colorAvailable(view.color)) view.color = defaultColor(points);
  if (view.point !== null && view.point >= points.n) view.point = null;
  writeView();
  populatePickers();
  renderScores();
  await ensureAtlas();
  const coloring = viewColoring(points);
  if (!map.view) createMapView();
  const projectionChanged = previousProjection !== view.projection;
  $("#map").dataset.method = points.projection ? points.projection.method : "";
  renderMapStatus();
  if (!map.view.drawnOnce || projectionChanged) await map.view.draw(points, coloring, view.projection || "map");
  else {
    map.view.points = points;
    await map.view.recolor(coloring);
  }
  overlay(null);
  if (view.point !== null) await handlers.selectPoint(view.point, { fromUrl: true });
  else await map.view.setFocus(null);
  if (map.selection && map.selection.indices) map.selection.set(map.selection.indices, points);
  document.dispatchEvent(new CustomEvent("latentmap:points"));
  // Every sprite-sheet page, nearest-first: later hovers never wait for the network.
  state.atlas.preload({ parallel: 2, first: view.point !== null ? [view.point] : [] });
  if (!keepView) map.view.resetView();
}

function createMapView() {
  map.view = new MapView($("#map"), {
    onHover: (index, event) => map.hoverCard.show(index, pointFacts(index), event),
    onUnhover: () => map.hoverCard && map.hoverCard.hide(),
    onClick: (index) => handlers.selectPoint(index),
    onSelect: (indices) => showSelection(indices),
    onDeselect: () => showSelection(null),
    onBackgroundClick: (x, y) => handlers.backgroundClick(x, y),
    onDrawn: () => {
      if (!window.__latentmap.mapDrawnAt) {
        window.__latentmap.mapDrawnAt = performance.now();
        mark("map-drawn");
      }
      window.__latentmap.mapRevision = (window.__latentmap.mapRevision || 0) + 1;
      const drawn = (window.__latentmap.drawnMethods ||= []); // each projection method drawn, in order
      if (drawn[drawn.length - 1] !== $("#map").dataset.method) drawn.push($("#map").dataset.method);
      $("#map").dataset.drawn = "1";
      $("#map").dataset.points = String(state.points.n);
    },
  });
  window.__latentmap.map = map.view;
  bindModes(document, [map.view]);
}

/** Recolour the drawn map for the view's colour mode. */
export async function recolorMap() {
  if (map.view && state.points) await map.view.recolor(viewColoring(state.points));
}

/** The view's colouring; a clustering with a stability check names each cluster's stability in the legend. */
export function viewColoring(points) {
  const mode = state.view.color || "";
  const category = mode.startsWith("category:") && points.categories ? points.categories[mode.slice(9)] : null;
  if (category) {
    // An imported text column: coloured like labels, one legend entry per value.
    return { mode: "label", codes: category.codes, legendTitle: mode.slice(9), nameOf: (code) => category.names[code] ?? String(code) };
  }
  const coloring = coloringFor(points, state.view.color);
  const stability = points.clustering && points.clustering.stability;
  if (coloring.mode !== "cluster" || !stability || !stability.per_cluster) return coloring;
  return {
    ...coloring,
    nameOf: (code) => {
      const share = stability.per_cluster[String(code)];
      return share === undefined ? coloring.nameOf(code) : `${coloring.nameOf(code)} · stable ${Math.round(share * 100)}%`;
    },
  };
}

function defaultColor(points) {
  if (points.label) return "label";
  if (points.cluster) return "cluster";
  const names = Object.keys(points.values || {});
  return names.length ? `value:${names[0]}` : "none";
}

function colorAvailable(mode) {
  const points = state.points;
  if (mode === "label") return Boolean(points.label);
  if (mode === "cluster") return Boolean(points.cluster);
  if (mode.startsWith("value:")) return Boolean(points.values[mode.slice(6)]);
  if (mode.startsWith("category:")) return Boolean(points.categories && points.categories[mode.slice(9)]);
  return mode === "none";
}

async function ensureAtlas() {
  if (state.atlas) return;
  try {
    state.dataset = await (state.datasetPromise || api.get(`/api/datasets/${enc(state.run.dataset)}`));
    state.atlas = new Atlas(state.dataset);
  } catch (error) {
    // The map still works without images (e.g. the dataset was removed since training).
    state.dataset = { name: state.run.dataset, n: state.points.n, image_shape: null, atlas: null, missing: true };
    state.atlas = new Atlas(state.dataset, { available: false });
    // An import without images says so in its config: nothing went wrong then.
    if ((state.run.config || {}).has_images !== false) toast(`The images of dataset ${state.run.dataset} cannot be shown: ${error.message}`, "error", 8000);
  }
  window.__latentmap.atlas = state.atlas;
  map.hoverCard = new HoverCard(state.atlas);
  map.selection = new SelectionPanel($("#panel-selection"), {
    atlas: state.atlas,
    onPick: (index) => handlers.selectPoint(index),
    onClear: () => {
      map.view.clearSelection();
      map.view.setHighlight(null);
      $("#selection-count").textContent = "";
    },
    fileName: () => `${runId}-selection-${map.selection.indices ? map.selection.indices.length : 0}.csv`,
  });
}

function pointFacts(index) {
  const points = state.points;
  const names = points.class_names || [];
  const facts = {};
  if (points.label) facts.label = names[points.label[index]] ?? String(points.label[index]);
  if (points.cluster) facts.cluster = points.cluster[index] < 0 ? "noise" : String(points.cluster[index]);
  const color = state.view.color || "";
  const valueName = color.startsWith("value:") ? color.slice(6) : Object.keys(points.values)[0];
  if (valueName && points.values[valueName]) {
    facts.valueName = valueName;
    facts.value = fixed(points.values[valueName][index], 2);
  }
  return facts;
}

function showSelection(indices) {
  if (!map.selection) return;
  map.selection.set(indices, state.points);
  $("#selection-count").textContent = indices && indices.length ? count(indices.length) : "";
  if (indices && indices.length) switchTab("selection");
  document.dispatchEvent(new CustomEvent("latentmap:selection", { detail: { indices: indices || null } }));
}
