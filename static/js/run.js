// Run page: live training (loss curve, progress, cancel), then the embedding map with its pickers,
// hover images, point panel with neighbours, selections, scorecard and reconstructions.
// The view (projection, clustering, colouring, selected point) lives in the query string.

import { api, enc, fieldErrors } from "./api.js";
import { Atlas } from "./atlas.js";
import { AugmentationPanel } from "./augmentations.js";
import { decodePoints } from "./decode.js";
import { $, clear, el, setOptions, toast } from "./dom.js";
import { analysisTitle, count, duration, fixed, humanName, methodName, percent, sig } from "./format.js";
import { HealthPanel } from "./health.js";
import { HoverCard } from "./hovercard.js";
import { ACTIVE, followJob } from "./jobs.js";
import { bindModes, coloringFor, MapView } from "./mapview.js";
import { paramFields, setError } from "./params.js";
import { plotlyReady } from "./plotly-loader.js";
import { SelectionPanel } from "./selection.js";

const runId = $("#run-page").dataset.runId;
const runPath = `/api/runs/${enc(runId)}`;
const augmentationPanel = new AugmentationPanel($("#point-augmentations"), runPath);
window.__latentmap = window.__latentmap || {};

/** performance.mark with our prefix; the bench reads them to say where page-load time goes. */
function mark(name) {
  if (!performance.getEntriesByName(`latentmap:${name}`).length) performance.mark(`latentmap:${name}`);
}

const state = {
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
  pointRequest: 0,
  neighborsRequest: null,
};

// ----- URL state ------------------------------------------------------------------------------
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

function writeView() {
  const query = new URLSearchParams();
  const view = state.view;
  if (view.projection) query.set("projection", view.projection);
  if (view.clustering) query.set("clustering", view.clustering);
  if (view.color) query.set("color", view.color);
  if (view.point !== null) query.set("point", String(view.point));
  const text = query.toString();
  history.replaceState(null, "", text ? `${location.pathname}?${text}` : location.pathname);
  updateCompareLink();
}

// ----- run header -----------------------------------------------------------------------------
function methodLabel(name) {
  const info = state.methods && state.methods.training[name];
  return info ? info.label : name;
}

function showStatus(status) {
  const badge = $("#run-status");
  badge.hidden = false;
  badge.className = `badge status-${status}`;
  badge.textContent = status;
}

function renderHeader() {
  const run = state.run;
  const config = run.config || {};
  $("#run-heading").textContent = `${methodLabel(run.method)} on ${run.dataset}`;
  document.title = `${methodLabel(run.method)} on ${run.dataset} · ${run.id} · latentmap`;
  showStatus(run.status);
  const parts = [];
  if (config.epochs) parts.push(`${config.epochs} epochs`);
  if (config.embedding_dim) parts.push(`embedding ${config.embedding_dim}`);
  if (config.batch_size) parts.push(`batch ${config.batch_size}`);
  if (config.lr) parts.push(`lr ${config.lr}`);
  if (config.seed !== undefined) parts.push(`seed ${config.seed}`);
  for (const [key, value] of Object.entries(config.method_params || {})) parts.push(`${humanName(key).toLowerCase()} ${value}`);
  if (run.embedding_shape) parts.push(`${count(run.embedding_shape[0])} × ${run.embedding_shape[1]} embedding`);
  $("#run-subtitle").textContent = parts.join(" · ");
}

function showError(message) {
  const box = $("#run-error");
  box.hidden = !message;
  box.textContent = message || "";
}

function updateCompareLink() {
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

// ----- training -------------------------------------------------------------------------------
const training = { chart: null, x: [], y: [], pending: [], frame: 0, started: null };

async function showTraining(run) {
  const panel = $("#training-panel");
  panel.hidden = false;
  const job = run.job;
  training.started = job && job.started ? job.started * 1000 : Date.now();
  training.health = new HealthPanel($("#health-live"), { dim: (run.config || {}).embedding_dim, banner: $("#health-warning") }); // SSL health (health.js)
  training.health.update(run.history);
  // Finished epochs recorded so far (arriving mid-run), then live points from the events.
  for (const row of run.history || []) {
    training.x.push(row.epoch);
    training.y.push(row.loss);
  }
  if (job) updateTraining(job);
  const Plotly = await plotlyReady();
  await Plotly.newPlot(
    "loss-chart",
    [{ type: "scatter", mode: "lines", x: training.x.slice(), y: training.y.slice(), line: { color: "#4f46e5", width: 2 }, hovertemplate: "epoch %{x:.2f}<br>loss %{y:.4g}<extra></extra>" }],
    chartLayout({ xTitle: "epoch", yTitle: "loss" }),
    { displayModeBar: false, responsive: true },
  );
  training.chart = $("#loss-chart");
  flushLoss();
  $("#cancel-button").onclick = () => cancelTraining(run);
  const timer = setInterval(() => {
    if ($("#training-panel").hidden) clearInterval(timer);
    else $("#stat-elapsed").textContent = duration((Date.now() - training.started) / 1000);
  }, 1000);
}

function chartLayout({ xTitle, yTitle }) {
  return {
    margin: { l: 52, r: 12, t: 8, b: 36 },
    paper_bgcolor: "rgba(0,0,0,0)",
    plot_bgcolor: "#ffffff",
    xaxis: { title: { text: xTitle, font: { size: 11 } }, gridcolor: "#eef0f3", zeroline: false, rangemode: "tozero" },
    yaxis: { title: { text: yTitle, font: { size: 11 } }, gridcolor: "#eef0f3", zeroline: false },
    font: { family: "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", size: 11, color: "#374151" },
    showlegend: false,
  };
}

function updateTraining(job) {
  const metrics = job.metrics || {};
  const fraction = job.progress || metrics.fraction || 0;
  const bar = $("#training-progress");
  bar.setAttribute("aria-valuenow", String(Math.round(fraction * 100)));
  bar.querySelector(".progress-bar").style.width = `${(fraction * 100).toFixed(1)}%`;
  bar.dataset.status = job.status;
  if (ACTIVE.has(job.status)) showStatus(job.status); // the run's badge follows its training job (queued → running)
  // Before its first epoch a running job loads the dataset and builds the model: say so, not "—".
  $("#stat-epoch").textContent = metrics.epoch !== undefined && metrics.epochs ? `${metrics.epoch} / ${metrics.epochs}` : job.status === "queued" ? "queued" : job.status === "running" ? "starting…" : "—";
  $("#stat-loss").textContent = metrics.loss !== undefined ? sig(metrics.loss) : "—";
  $("#stat-speed").textContent = metrics.images_per_second ? count(Math.round(metrics.images_per_second)) : "—";
  $("#stat-eta").textContent = metrics.eta_seconds !== undefined ? duration(metrics.eta_seconds) : "—";
  if (training.health) training.health.update(metrics.health);
  if (metrics.loss !== undefined && Number.isFinite(metrics.loss) && metrics.epochs) {
    training.pending.push([fraction * metrics.epochs, metrics.loss]);
    if (!training.frame) training.frame = requestAnimationFrame(flushLoss);
  }
}

function flushLoss() {
  training.frame = 0;
  if (!training.chart || !training.pending.length || !window.Plotly) return;
  const xs = training.pending.map((point) => point[0]);
  const ys = training.pending.map((point) => point[1]);
  training.pending = [];
  window.Plotly.extendTraces(training.chart, { x: [xs], y: [ys] }, [0], 5000);
}

async function cancelTraining(run) {
  const button = $("#cancel-button");
  if (!run.job_id) return;
  button.disabled = true;
  button.textContent = "Cancelling…";
  try {
    await api.post(`/api/jobs/${enc(run.job_id)}/cancel`);
  } catch (error) {
    toast(error.message, "error", 8000);
    button.disabled = false;
    button.textContent = "Cancel training";
  }
}

function followTraining(run) {
  if (!run.job_id || state.followers.has(run.job_id)) return;
  state.followers.set(
    run.job_id,
    followJob(run.job_id, {
      onProgress: updateTraining,
      onEnd: async (job) => {
        state.followers.delete(run.job_id);
        updateTraining(job);
        $("#cancel-button").hidden = true;
        await refreshRun();
        if (job.status === "succeeded") {
          $("#training-panel").hidden = true;
          toast("Training finished; computing the map", "success");
          await enterMap();
        } else {
          trainingEnded(job);
        }
      },
    }),
  );
}

function trainingEnded(job) {
  const reason = job.status === "cancelled" ? "Training was cancelled." : job.status === "interrupted" ? "Training was interrupted (the server stopped)." : `Training failed: ${job.error || "unknown error"}`;
  showError(`${reason} Start a new run from the home page${job.status !== "failed" ? ", or resume it with POST /api/jobs/{id}/resume" : ""}.`);
}

// ----- map ------------------------------------------------------------------------------------
let mapView = null;
let hoverCard = null;
let selection = null;

/** The message over the map area: text (null hides it), a progress fraction, a spinner while waiting. */
function overlay(text, fraction, { waiting = true } = {}) {
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
function renderMapStatus() {
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

async function enterMap() {
  $("#map-section").hidden = false;
  new HealthPanel($("#health-history"), { dim: (state.run.config || {}).embedding_dim, banner: $("#health-warning") }).update(state.run.history); // SSL health (health.js)
  renderScores();
  renderRunTab();
  populatePickers();
  watchAnalyses();
  const finished = state.run.projections.some((item) => item.status === "succeeded");
  if (!finished) {
    const pending = state.run.projections.find((item) => ACTIVE.has(item.status));
    if (pending) overlay(`Computing the ${methodName(pending.method)} projection…`, 0);
    else overlay("This run has no projection yet. Use “New projection / clustering” to compute one.", null, { waiting: false });
    return;
  }
  await loadPoints();
}

function pointsQuery(view) {
  const query = new URLSearchParams();
  if (view.projection) query.set("projection", view.projection);
  if (view.clustering) query.set("clustering", view.clustering);
  return query.toString();
}

async function loadPoints({ keepView = true } = {}) {
  const view = state.view;
  const query = pointsQuery(view);
  const ticket = ++state.pointRequest;
  if (!mapView || !mapView.drawnOnce) overlay("Loading the map…");
  let payload;
  try {
    const prefetched = state.prefetch && state.prefetch.query === query ? state.prefetch.promise : null;
    state.prefetch = null;
    payload = await (prefetched || api.get(`${runPath}/points?${query}`));
  } catch (error) {
    if (ticket !== state.pointRequest) return;
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
  if (ticket !== state.pointRequest) return;
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
  const coloring = coloringFor(points, view.color);
  if (!mapView) {
    mapView = new MapView($("#map"), {
      onHover: hoverPoint,
      onUnhover: () => hoverCard && hoverCard.hide(),
      onClick: (index) => selectPoint(index),
      onSelect: (indices) => showSelection(indices),
      onDeselect: () => showSelection(null),
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
    window.__latentmap.map = mapView;
    bindModes(document, [mapView]);
  }
  const projectionChanged = previousProjection !== view.projection;
  $("#map").dataset.method = points.projection ? points.projection.method : "";
  renderMapStatus();
  if (!mapView.drawnOnce || projectionChanged) await mapView.draw(points, coloring, view.projection || "map");
  else {
    mapView.points = points;
    await mapView.recolor(coloring);
  }
  overlay(null);
  if (view.point !== null) await selectPoint(view.point, { fromUrl: true });
  else await mapView.setFocus(null);
  if (selection && selection.indices) selection.set(selection.indices, points);
  // Every sprite-sheet page, nearest-first: later hovers never wait for the network.
  state.atlas.preload({ parallel: 2, first: view.point !== null ? [view.point] : [] });
  if (!keepView) mapView.resetView();
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
    toast(`The images of dataset ${state.run.dataset} cannot be shown: ${error.message}`, "error", 8000);
  }
  window.__latentmap.atlas = state.atlas;
  hoverCard = new HoverCard(state.atlas);
  selection = new SelectionPanel($("#panel-selection"), {
    atlas: state.atlas,
    onPick: (index) => selectPoint(index),
    onClear: () => {
      mapView.clearSelection();
      mapView.setHighlight(null);
      $("#selection-count").textContent = "";
    },
    fileName: () => `${runId}-selection-${selection.indices ? selection.indices.length : 0}.csv`,
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

function hoverPoint(index, event) {
  hoverCard.show(index, pointFacts(index), event);
}

// ----- pickers --------------------------------------------------------------------------------
function registryOf(kind) {
  return (state.methods && state.methods[kind]) || {};
}

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

function populatePickers() {
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
  colors.push({ value: "none", text: "nothing" });
  setOptions(colorSelect, colors);
  if (state.view.color) colorSelect.value = state.view.color;
  updateCompareLink();
}

function bindPickers() {
  $("#projection-select").addEventListener("change", (event) => {
    state.view.projection = event.target.value || null;
    state.followDefault = false;
    state.mapNotice = null;
    renderMapStatus();
    writeView();
    loadPoints();
  });
  $("#clustering-select").addEventListener("change", (event) => {
    state.view.clustering = event.target.value || null;
    state.view.color = "cluster"; // picking a clustering is asking to see it
    writeView();
    loadPoints();
  });
  $("#color-select").addEventListener("change", async (event) => {
    state.view.color = event.target.value;
    writeView();
    if (mapView && state.points) await mapView.recolor(coloringFor(state.points, state.view.color));
  });
}

// ----- point panel ----------------------------------------------------------------------------
async function selectPoint(index, { fromUrl = false } = {}) {
  if (!state.points || index < 0 || index >= state.points.n) return;
  state.view.point = index;
  writeView();
  switchTab("point");
  const points = state.points;
  const names = points.class_names || [];
  $("#point-empty").hidden = true;
  const detail = $("#point-detail");
  detail.hidden = false;
  detail.dataset.index = String(index);
  const image = $("#point-image");
  const small = state.dataset && state.dataset.image_shape && Math.max(state.dataset.image_shape[1], state.dataset.image_shape[2]) < 64;
  image.classList.toggle("pixelated", Boolean(small));
  image.hidden = Boolean(state.dataset && state.dataset.missing);
  if (!image.hidden) image.src = `/api/datasets/${enc(state.run.dataset)}/images/${index}?size=256`;
  image.alt = `Image ${index}${points.label ? `, label ${names[points.label[index]] ?? points.label[index]}` : ""}`;
  const facts = clear($("#point-facts"));
  const addFact = (term, value) => facts.append(el("div", {}, el("dt", { text: term }), el("dd", { text: value })));
  addFact("index", String(index));
  if (points.label) addFact("label", names[points.label[index]] ?? String(points.label[index]));
  if (points.cluster) addFact("cluster", points.cluster[index] < 0 ? "noise" : String(points.cluster[index]));
  for (const [name, values] of Object.entries(points.values)) addFact(humanName(name), fixed(values[index], 2));
  addFact("position", `${fixed(points.x[index], 2)}, ${fixed(points.y[index], 2)}`);
  mapView.setFocus(index);
  augmentationPanel.show(index); // contrastive runs: the point's positive pairs (augmentations.js)
  await loadNeighbors(index);
  if (fromUrl) state.atlas.load(state.atlas.pageOf(index)).catch(() => {});
}

async function loadNeighbors(index) {
  const box = clear($("#point-neighbors"));
  box.dataset.state = "loading";
  box.append(el("p", { class: "muted small", text: "Finding neighbours…" }));
  if (state.neighborsRequest) state.neighborsRequest.abort();
  const controller = new AbortController();
  state.neighborsRequest = controller;
  const query = new URLSearchParams({ k: "12" });
  if (state.view.clustering) query.set("clustering", state.view.clustering);
  let result;
  try {
    result = await api.get(`${runPath}/neighbors/${index}?${query}`, { signal: controller.signal });
  } catch (error) {
    if (error.name === "AbortError") return;
    clear(box).append(el("p", { class: "error-text small", text: error.message }));
    box.dataset.state = "error";
    return;
  }
  const names = state.points.class_names || [];
  clear(box);
  for (const neighbor of result.neighbors) {
    const label = neighbor.label !== null && neighbor.label !== undefined ? names[neighbor.label] ?? String(neighbor.label) : null;
    const tile = el("span", { class: "tile", "aria-hidden": "true" });
    state.atlas.paint(tile, neighbor.index, 64);

    box.append(
      el(
        "button",
        {
          type: "button",
          class: "neighbor",
          dataset: { index: neighbor.index },
          title: `#${neighbor.index}${label !== null ? ` · label ${label}` : ""}${neighbor.cluster !== null && neighbor.cluster !== undefined ? ` · cluster ${neighbor.cluster}` : ""} · distance ${sig(neighbor.distance)}`,
          on: { click: () => selectPoint(neighbor.index) },
        },
        tile,
        el("span", { class: "neighbor-caption", text: label !== null ? label : `#${neighbor.index}` }),
        el("span", { class: "neighbor-distance", text: sig(neighbor.distance, 2) }),
      ),
    );
  }
  box.dataset.state = "ready";
}

function closePoint() {
  state.view.point = null;
  writeView();
  $("#point-detail").hidden = true;
  $("#point-empty").hidden = false;
  mapView.setFocus(null);
}

// ----- selection ------------------------------------------------------------------------------
function showSelection(indices) {
  if (!selection) return;
  selection.set(indices, state.points);
  $("#selection-count").textContent = indices && indices.length ? count(indices.length) : "";
  if (indices && indices.length) switchTab("selection");
}

function switchTab(name) {
  for (const tab of document.querySelectorAll('.sidebar [role="tab"]')) {
    const selected = tab.id === `tab-${name}`;
    tab.setAttribute("aria-selected", String(selected));
    document.getElementById(tab.getAttribute("aria-controls")).hidden = !selected;
  }
  // Charts are drawn when their panel is visible: Plotly sizes a chart from its container.
  if (name === "run" && state.run) renderRunTab();
}

// ----- scores and run tab ---------------------------------------------------------------------
function renderScores() {
  const run = state.run;
  const metrics = run.metrics || {};
  const projection = state.points && state.points.projection;
  const clustering = state.points && state.points.clustering;
  const pm = (projection && projection.metrics) || {};
  const cm = (clustering && clustering.metrics) || {};
  const chips = [
    ["kNN accuracy", metrics.knn_accuracy, percent, "k-nearest-neighbour classification accuracy in the embedding"],
    ["Linear probe", metrics.linear_probe_accuracy, percent, "accuracy of a linear classifier trained on the embedding"],
    ["Trustworthiness", pm.trustworthiness, (v) => fixed(v, 3), "how well the 2-D map keeps embedding neighbourhoods (1 = perfectly)"],
    ["Clusters", cm.n_clusters, (v) => String(v), "clusters in the selected clustering"],
    ["Silhouette", cm.silhouette, (v) => fixed(v, 3), "cluster separation, −1 … 1"],
    ["ARI vs labels", cm.ari, (v) => fixed(v, 3), "adjusted Rand index of the clustering against the labels"],
    ["NMI vs labels", cm.nmi, (v) => fixed(v, 3), "normalised mutual information against the labels"],
    ["Matched accuracy", cm.accuracy, percent, "accuracy after matching clusters to labels (Hungarian)"],
    ["Noise", cm.noise_fraction, percent, "points the clustering calls noise"],
  ];
  const box = clear($("#scorecard"));
  for (const [name, value, format, help] of chips) {
    if (value === null || value === undefined) continue;
    if (name === "Noise" && !value) continue;
    box.append(el("div", { class: "score", title: help }, el("span", { class: "score-name", text: name }), el("span", { class: "score-value", text: format(value) })));
  }
  const scores = clear($("#run-scores"));
  const add = (term, value) => scores.append(el("div", {}, el("dt", { text: term }), el("dd", { text: value })));
  add("kNN accuracy", percent(metrics.knn_accuracy));
  add("Linear probe", percent(metrics.linear_probe_accuracy));
  add("Final loss", sig(metrics.final_loss));
  add("Training time", duration(metrics.train_seconds));
  add("Images / s", metrics.images_per_second ? count(Math.round(metrics.images_per_second)) : "—");
  if (projection) add(`Trustworthiness (${projection.method})`, fixed(pm.trustworthiness, 3));
  if (clustering) {
    add(`Silhouette (${clustering.method})`, fixed(cm.silhouette, 3));
    add("ARI / NMI vs labels", `${fixed(cm.ari, 3)} / ${fixed(cm.nmi, 3)}`);
  }
}

let runTabRendered = false;

async function renderRunTab() {
  const run = state.run;
  const config = clear($("#run-config"));
  for (const [key, value] of Object.entries(run.config || {})) {
    if (value === null || value === undefined) continue;
    const text = typeof value === "object" ? Object.entries(value).map(([k, v]) => `${k}=${v}`).join(", ") || "—" : String(value);
    config.append(el("div", {}, el("dt", { text: humanName(key) }), el("dd", { text })));
  }
  if ($("#panel-run").hidden) return;
  if (runTabRendered) {
    if (window.Plotly && $("#history-chart").data) window.Plotly.Plots.resize("history-chart");
    return;
  }
  runTabRendered = true;
  if (run.has_reconstructions) loadReconstructions();
  const history = run.history || [];
  if (history.length) {
    const Plotly = await plotlyReady();
    Plotly.newPlot(
      "history-chart",
      [{ type: "scatter", mode: "lines+markers", x: history.map((row) => row.epoch), y: history.map((row) => row.loss), line: { color: "#4f46e5", width: 2 }, marker: { size: 4 }, hovertemplate: "epoch %{x}<br>loss %{y:.4g}<extra></extra>" }],
      chartLayout({ xTitle: "epoch", yTitle: "loss" }),
      { displayModeBar: false, responsive: true },
    );
  } else {
    $("#history-chart").replaceChildren(el("p", { class: "muted small", text: "No finished epochs recorded." }));
  }
}

async function loadReconstructions() {
  const block = $("#reconstructions-block");
  try {
    const result = await api.get(`${runPath}/reconstructions?size=64`);
    const grid = clear($("#reconstructions"));
    result.indices.forEach((index, j) => {
      grid.append(
        el(
          "figure",
          { class: "recon-pair", title: `image ${index}` },
          el("img", { src: result.originals[j], alt: `original ${index}`, class: "pixelated" }),
          el("img", { src: result.reconstructions[j], alt: `reconstruction ${index}`, class: "pixelated" }),
          el("figcaption", { text: `#${index}` }),
        ),
      );
    });
    block.hidden = result.indices.length === 0;
  } catch (error) {
    block.hidden = true;
  }
}

// ----- new projection / clustering ------------------------------------------------------------
let analysisFields = null;

function analysisKind() {
  return document.querySelector('#analysis-panel input[name="kind"]:checked').value;
}

async function openAnalysisPanel(open) {
  const panel = $("#analysis-panel");
  panel.hidden = !open;
  $("#new-analysis-button").setAttribute("aria-expanded", String(open));
  if (open) {
    if (!state.methods) state.methods = await api.get("/api/methods");
    buildAnalysisForm();
  }
}

function buildAnalysisForm() {
  const kind = analysisKind();
  const registry = kind === "projection" ? state.methods.projections : state.methods.clusterings;
  const select = $("#analysis-method");
  const previous = select.dataset.kind === kind ? select.value : null;
  setOptions(select, Object.entries(registry).map(([name, info]) => ({ value: name, text: methodName(name, info) })));
  select.dataset.kind = kind;
  if (previous && registry[previous]) select.value = previous;
  const onField = $("#analysis-on-field");
  onField.hidden = kind !== "clustering";
  if (kind === "clustering") {
    const projections = state.run.projections.filter((item) => item.status !== "failed" && item.status !== "cancelled");
    const registry = registryOf("projections");
    setOptions($("#analysis-on"), [{ value: "embedding", text: "the embedding" }, ...projections.map((item) => ({ value: item.id, text: `projection: ${analysisTitle(item, registry)}` }))]);
  }
  const method = registry[select.value];
  analysisFields = paramFields($("#analysis-params"), method ? method.params : [], { idPrefix: "analysis" });
  analysisError(null);
}

function analysisError(message) {
  const box = $("#analysis-error");
  box.hidden = !message;
  box.textContent = message || "";
}

async function submitAnalysis(event) {
  event.preventDefault();
  analysisError(null);
  const { values, errors } = analysisFields.read();
  if (Object.keys(errors).length) {
    analysisError("Fix the marked fields; nothing was submitted.");
    analysisFields.focusFirstError();
    return;
  }
  const kind = analysisKind();
  const method = $("#analysis-method").value;
  const body = { method, params: values };
  if (kind === "clustering") body.on = $("#analysis-on").value;
  const button = $("#analysis-submit");
  button.disabled = true;
  try {
    const created = await api.post(`${runPath}/${kind === "projection" ? "projections" : "clusterings"}`, body);
    const targetId = created.projection_id || created.clustering_id;
    toast(`${kind === "projection" ? "Projection" : "Clustering"} ${method} started`, "info");
    openAnalysisPanel(false);
    await refreshRun();
    followAnalysis({ id: targetId, job_id: created.job_id, method }, kind, { select: true });
  } catch (error) {
    const mapped = fieldErrors(error, [...analysisFields.names, "method", "on"]);
    analysisFields.showErrors(mapped);
    if (mapped.method) setError($('#analysis-panel [data-field="method"]'), $("#analysis-method"), mapped.method);
    if (mapped.on) setError($("#analysis-on-field"), $("#analysis-on"), mapped.on);
    analysisError(mapped._form || "The server refused the marked fields; nothing was started.");
  } finally {
    button.disabled = false;
  }
}

/** Follow every running projection/clustering job of the run (default ones queued after training too). */
function watchAnalyses() {
  for (const item of state.run.projections) if (ACTIVE.has(item.status)) followAnalysis(item, "projection");
  for (const item of state.run.clusterings) if (ACTIVE.has(item.status)) followAnalysis(item, "clustering");
}

function followAnalysis(item, kind, { select = false } = {}) {
  if (!item.job_id || state.followers.has(item.job_id)) return;
  const chip = el(
    "span",
    { class: "job-chip", dataset: { jobId: item.job_id, kind } },
    el("span", { class: "job-chip-name", text: methodName(item.method, registryOf(kind === "projection" ? "projections" : "clusterings")[item.method]) }),
    el("span", { class: "progress tiny" }, el("span", { class: "progress-bar" })),
    el("span", { class: "job-chip-text", text: "queued" }),
  );
  $("#job-chips").append(chip);
  const follower = followJob(item.job_id, {
    onProgress: (job) => {
      const fraction = job.progress || 0;
      chip.querySelector(".progress-bar").style.width = `${(fraction * 100).toFixed(0)}%`;
      chip.querySelector(".job-chip-text").textContent = job.status === "queued" ? "queued" : `${Math.round(fraction * 100)}%`;
      if (kind === "projection" && !state.points) overlay(`Computing the ${methodName(item.method)} projection…`, fraction);
      if (kind === "projection") {
        state.projectionProgress.set(item.id, job.status === "queued" ? null : fraction);
        renderMapStatus();
      }
    },
    onEnd: async (job) => {
      state.followers.delete(item.job_id);
      state.projectionProgress.delete(item.id);
      chip.remove();
      await refreshRun();
      populatePickers();
      if (job.status !== "succeeded") {
        const what = `The ${methodName(item.method)} projection ${job.status}${job.error ? `: ${job.error}` : ""}`;
        toast(`${kind} ${item.method} ${job.status}${job.error ? `: ${job.error}` : ""}`, "error", 8000);
        if (kind === "projection" && !state.points) overlay(`${what}. Compute another with “New projection / clustering”.`, null, { waiting: false });
        else if (kind === "projection" && state.followDefault) state.mapNotice = `${what}. The map shown stays the ${methodName(state.points.projection.method)} map.`;
        renderMapStatus();
        return;
      }
      // The default map's jobs show on the map itself (and its status line); only a person's own say so.
      if (select) toast(`${kind === "projection" ? "Projection" : "Clustering"} ${item.method} finished`, "success");
      const first = kind === "projection" ? !state.points : !(state.points && state.points.cluster);
      // The map follows the default view: a projection that finishes later replaces the quick one.
      const better = kind === "projection" && state.followDefault;
      if (select || first || better) {
        if (kind === "projection") state.view.projection = item.id;
        else {
          state.view.clustering = item.id;
          if (select) state.view.color = "cluster";
        }
        writeView();
        await loadPoints();
      }
    },
  });
  state.followers.set(item.job_id, follower);
}

// ----- start ----------------------------------------------------------------------------------
async function refreshRun() {
  state.run = await api.get(runPath);
  window.__latentmap.run = state.run;
  renderHeader();
  return state.run;
}

function bindStatic() {
  bindPickers();
  $("#point-close").addEventListener("click", closePoint);
  for (const tab of document.querySelectorAll('.sidebar [role="tab"]')) tab.addEventListener("click", () => switchTab(tab.id.slice(4)));
  $("#new-analysis-button").addEventListener("click", () => openAnalysisPanel($("#analysis-panel").hidden));
  $("#analysis-close").addEventListener("click", () => openAnalysisPanel(false));
  for (const radio of document.querySelectorAll('#analysis-panel input[name="kind"]')) radio.addEventListener("change", buildAnalysisForm);
  $("#analysis-method").addEventListener("change", buildAnalysisForm);
  $("#analysis-panel").addEventListener("submit", submitAnalysis);
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      if (!$("#analysis-panel").hidden) openAnalysisPanel(false);
      else if (state.view.point !== null && !$("#point-detail").hidden) closePoint();
    }
  });
  window.addEventListener("resize", () => mapView && mapView.resize());
}

async function start() {
  bindStatic();
  // Every request starts at once, before Plotly (4.8 MB, preloaded by the page head) is evaluated;
  // the points request is a guess that is right whenever the run has finished.
  const methods = api.get("/api/methods").catch(() => null);
  const query = pointsQuery(state.view);
  state.prefetch = { query, promise: api.get(`${runPath}/points?${query}`) };
  state.prefetch.promise.catch(() => {});
  state.prefetch.promise.then(() => mark("points-received"), () => {});
  const runPromise = refreshRun();
  plotlyReady().then(() => mark("plotly-ready"), (error) => showError(error.message));
  let run;
  try {
    run = await runPromise;
  } catch (error) {
    showError(error.status === 404 ? `There is no run ${runId}. It may have been deleted.` : `The run could not be loaded: ${error.message}`);
    $("#run-heading").textContent = "Run not found";
    return;
  }
  mark("run-received");
  state.datasetPromise = api.get(`/api/datasets/${enc(run.dataset)}`);
  state.datasetPromise.catch(() => {});
  state.methods = await methods;
  renderHeader();
  if (ACTIVE.has(run.status)) {
    await showTraining(run);
    followTraining(run);
    return;
  }
  if (run.status !== "succeeded") {
    if (run.job) trainingEnded(run.job);
    else showError(`This run is ${run.status}.`);
    if ((run.history || []).length) {
      $("#training-panel").hidden = false;
      $("#cancel-button").hidden = true;
      await showTraining({ ...run, job: run.job ? { ...run.job, status: run.status } : null });
    }
    return;
  }
  await enterMap();
}

start();
