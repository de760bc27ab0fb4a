// Compare page: two clusterings (B possibly from another run on the same dataset) on linked maps,
// their contingency matrix as a heatmap (click a cell: those points on both maps, and their images),
// and agreement scores (ARI, NMI, matched accuracy; against the labels when there are labels).

import { api, enc } from "./api.js";
import { Atlas } from "./atlas.js";
import { categoryColor, NOISE_COLOR } from "./colors.js";
import { decodePoints } from "./decode.js";
import { $, clear, el, setOptions, toast } from "./dom.js";
import { analysisTitle, count, fixed, percent } from "./format.js";
import { HoverCard } from "./hovercard.js";
import { followJob } from "./jobs.js";
import { bindModes, MapView } from "./mapview.js";
import { plotlyReady } from "./plotly-loader.js";
import { SelectionPanel } from "./selection.js";

const runId = $("#compare-page").dataset.runId;
window.__latentmap = window.__latentmap || {};

const state = {
  run: null,
  methods: null,
  clusterings: [], // {item, run} for every finished clustering on the dataset, this run's first
  a: null,
  b: null,
  pointsA: null,
  pointsB: null,
  comparison: null,
  atlas: null,
  matching: new Map(), // B cluster id → A cluster id it is matched with (shares its colour)
};

const query = new URLSearchParams(location.search);

function showError(message) {
  const box = $("#compare-error");
  box.hidden = !message;
  box.textContent = message || "";
}

function writeUrl() {
  const params = new URLSearchParams();
  if (state.a) params.set("a", state.a.item.id);
  if (state.b) params.set("b", state.b.item.id);
  if (query.get("projection")) params.set("projection", query.get("projection"));
  history.replaceState(null, "", `${location.pathname}?${params}`);
  const back = new URLSearchParams();
  if (state.a) back.set("clustering", state.a.item.id);
  if (query.get("projection")) back.set("projection", query.get("projection"));
  $("#back-link").href = `/runs/${enc(runId)}?${back}`;
}

// ----- which clusterings exist ------------------------------------------------------------------
async function loadClusterings() {
  state.run = await api.get(`/api/runs/${enc(runId)}`);
  const others = (await api.get("/api/runs")).filter((run) => run.id !== runId && run.dataset === state.run.dataset && run.status === "succeeded").slice(0, 20);
  const details = await Promise.all(others.map((run) => api.get(`/api/runs/${enc(run.id)}`).catch(() => null)));
  const finished = (run) => run.clusterings.filter((item) => item.status === "succeeded").map((item) => ({ item, run }));
  state.clusterings = [...finished(state.run), ...details.filter(Boolean).flatMap(finished)];
}

function label(entry) {
  const registry = (state.methods && state.methods.clusterings) || {};
  const metrics = entry.item.metrics || {};
  const given = entry.item.params && entry.item.params.n_clusters !== null && entry.item.params.n_clusters !== undefined;
  const k = typeof metrics.n_clusters === "number" && !given ? ` (${metrics.n_clusters} clusters)` : "";
  return `${analysisTitle(entry.item, registry)}${k}`;
}

function populatePickers() {
  const options = state.clusterings.map((entry) => ({
    value: entry.item.id,
    text: label(entry),
    group: entry.run.id === runId ? `this run (${entry.run.method})` : `run ${entry.run.id} (${entry.run.method})`,
    title: entry.item.id,
  }));
  // A is a clustering of this run (the compare endpoint belongs to it); B may be any.
  setOptions($("#pick-a"), options.filter((option, i) => state.clusterings[i].run.id === runId));
  setOptions($("#pick-b"), options);
  if (state.a) $("#pick-a").value = state.a.item.id;
  if (state.b) $("#pick-b").value = state.b.item.id;
}

// ----- maps -------------------------------------------------------------------------------------
let mapA = null;
let mapB = null;
let hoverCard = null;
let cells = null;

function pointsUrl(entry) {
  const params = new URLSearchParams({ clustering: entry.item.id });
  // The chosen projection belongs to this run; B from another run uses that run's newest map.
  if (entry.run.id === runId && query.get("projection")) params.set("projection", query.get("projection"));
  return `/api/runs/${enc(entry.run.id)}/points?${params}`;
}

/** Give each B cluster the colour of the A cluster it overlaps most (one-to-one, largest first). */
function matchClusters(comparison) {
  const pairs = [];
  comparison.contingency.forEach((row, i) => row.forEach((n, j) => pairs.push([n, comparison.a_ids[i], comparison.b_ids[j]])));
  pairs.sort((p, q) => q[0] - p[0]);
  const usedA = new Set();
  const matching = new Map();
  for (const [n, a, b] of pairs) {
    if (n === 0 || a < 0 || b < 0 || usedA.has(a) || matching.has(b)) continue;
    matching.set(b, a);
    usedA.add(a);
  }
  let spare = Math.max(0, ...comparison.a_ids) + 1;
  for (const b of comparison.b_ids) if (b >= 0 && !matching.has(b)) matching.set(b, spare++);
  return matching;
}

function coloringA(points) {
  return { mode: "cluster", codes: points.cluster, legendTitle: "cluster A", nameOf: (code) => (code < 0 ? "noise" : `A ${code}`) };
}

function coloringB(points) {
  const matching = state.matching;
  return {
    mode: "cluster",
    codes: points.cluster,
    legendTitle: "cluster B",
    nameOf: (code) => (code < 0 ? "noise" : `B ${code}`),
    colorOf: (code) => (code < 0 ? NOISE_COLOR : categoryColor(matching.has(code) ? matching.get(code) : code)),
  };
}

function facts(index) {
  const known = state.pointsA || state.pointsB;
  const names = known.class_names || [];
  const result = {};
  if (known.label) result.label = names[known.label[index]] ?? String(known.label[index]);
  const side = (name, points) => (points ? `${name} ${clusterText(points.cluster[index])}` : `${name} (no map)`);
  result.cluster = `${side("A", state.pointsA)} · ${side("B", state.pointsB)}`;
  return result;
}

const clusterText = (code) => (code < 0 ? "noise" : String(code));

function linkedHandlers(self, other) {
  return {
    onHover: (index, event) => {
      hoverCard.show(index, facts(index), event);
      other().showRing(index);
      self().showRing(null);
    },
    onUnhover: () => {
      hoverCard.hide();
      other().showRing(null);
    },
    onClick: (index) => showPoints(Int32Array.of(index), `Image #${index}`),
    onSelect: (indices) => showPoints(indices, `${count(indices.length)} selected points`),
    onDeselect: () => showPoints(null),
    onDrawn: () => {
      window.__latentmap.drawn = (window.__latentmap.drawn || 0) + 1;
    },
  };
}

async function showPoints(indices, title) {
  const own = state.pointsA || state.pointsB;
  const other = state.pointsA ? state.pointsB : null;
  cells.set(indices, own, { title, other, otherColor: other ? coloringB(other).colorOf : null });
  await Promise.all([mapA.setHighlight(indices), mapB.setHighlight(indices)]);
}

// ----- scores and heatmap -----------------------------------------------------------------------
function renderScores() {
  const c = state.comparison;
  const box = clear($("#compare-scores"));
  const chip = (name, value, help) => box.append(el("div", { class: "score", title: help }, el("span", { class: "score-name", text: name }), el("span", { class: "score-value", text: value })));
  chip("ARI (A vs B)", fixed(c.ari, 3), "adjusted Rand index between the two clusterings: 1 = identical, 0 = chance");
  chip("NMI (A vs B)", fixed(c.nmi, 3), "normalised mutual information between the two clusterings");
  chip("Matched accuracy", percent(c.accuracy), "share of points in matched cluster pairs (Hungarian matching)");
  if (c.vs_labels) {
    for (const side of ["a", "b"]) {
      const s = c.vs_labels[side];
      chip(`${side.toUpperCase()} vs labels`, `ARI ${fixed(s.ari, 3)} · NMI ${fixed(s.nmi, 3)} · acc ${percent(s.accuracy)}`, `clustering ${side.toUpperCase()} against the true labels`);
    }
  } else {
    box.append(el("span", { class: "muted small", text: "This dataset has no labels: only A vs B is scored." }));
  }
  $("#title-a").textContent = label(state.a) + (state.a.run.id === runId ? "" : ` · run ${state.a.run.id}`);
  $("#title-b").textContent = label(state.b) + (state.b.run.id === runId ? "" : ` · run ${state.b.run.id} (its own map)`);
}

/** Column order that puts each B cluster under the A row it overlaps most: a readable diagonal. */
function columnOrder(comparison) {
  const best = comparison.b_ids.map((_, j) => {
    let row = 0;
    comparison.contingency.forEach((r, i) => {
      if (r[j] > comparison.contingency[row][j]) row = i;
    });
    return row;
  });
  return comparison.b_ids.map((_, j) => j).sort((p, q) => best[p] - best[q] || p - q);
}

async function renderHeatmap() {
  const Plotly = await plotlyReady();
  const c = state.comparison;
  const order = columnOrder(c);
  const z = c.contingency.map((row) => order.map((j) => row[j]));
  const x = order.map((j) => `B ${clusterText(c.b_ids[j])}`);
  const y = c.a_ids.map((id) => `A ${clusterText(id)}`);
  const small = x.length <= 16 && y.length <= 16;
  const trace = {
    type: "heatmap",
    z,
    x,
    y,
    colorscale: [[0, "#f7f8fc"], [0.15, "#c9cdf6"], [1, "#3730a3"]],
    hovertemplate: "%{y} ∩ %{x}: %{z} points<extra></extra>",
    texttemplate: small ? "%{z}" : undefined,
    textfont: { size: 10 },
    xgap: 1,
    ygap: 1,
    colorbar: { thickness: 10, outlinewidth: 0 },
  };
  const layout = {
    margin: { l: 56, r: 8, t: 8, b: 48 },
    paper_bgcolor: "rgba(0,0,0,0)",
    xaxis: { type: "category", tickfont: { size: 10 }, side: "bottom" },
    yaxis: { type: "category", autorange: "reversed", tickfont: { size: 10 } },
    font: { family: "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", size: 11, color: "#374151" },
  };
  const gd = $("#heatmap");
  await Plotly.react(gd, [trace], layout, { displayModeBar: false, responsive: true });
  gd.dataset.ready = "1";
  if (!gd.dataset.bound) {
    gd.dataset.bound = "1";
    gd.on("plotly_click", (event) => {
      const point = event.points && event.points[0];
      if (!point) return;
      const [row, column] = Array.isArray(point.pointNumber) ? point.pointNumber : [point.pointNumber, 0];
      selectCell(row, state.heatmapOrder[column]);
    });
  }
  state.heatmapOrder = order;
}

function selectCell(row, column) {
  const c = state.comparison;
  const a = c.a_ids[row];
  const b = c.b_ids[column];
  if (!state.pointsA || !state.pointsB) {
    toast("The images of a cell need both runs' maps: compute the missing map below", "info", 6000);
    return;
  }
  const clusterA = state.pointsA.cluster;
  const clusterB = state.pointsB.cluster;
  let n = 0;
  for (let i = 0; i < clusterA.length; i += 1) if (clusterA[i] === a && clusterB[i] === b) n += 1;
  const indices = new Int32Array(n);
  for (let i = 0, j = 0; i < clusterA.length; i += 1) if (clusterA[i] === a && clusterB[i] === b) indices[j++] = i;
  $("#heatmap").dataset.cell = `${a},${b}`;
  showPoints(indices.length ? indices : null, `A ${clusterText(a)} ∩ B ${clusterText(b)}: ${count(n)} points`);
}

// ----- loading ----------------------------------------------------------------------------------
/** The side's points, or null when its run has no finished projection (409): the scores need none. */
async function fetchPoints(entry) {
  try {
    return decodePoints(await api.get(pointsUrl(entry)));
  } catch (error) {
    if (error.status === 409) return null;
    throw error;
  }
}

async function compare() {
  if (!state.a || !state.b) return;
  writeUrl();
  showError(null);
  const ticket = (state.ticket = (state.ticket || 0) + 1);
  const pointsA = fetchPoints(state.a);
  const pointsB = fetchPoints(state.b);
  pointsA.catch(() => {});
  pointsB.catch(() => {});
  // The scores and the matrix need only the two label arrays: they show before any map.
  const comparison = await api.get(`/api/runs/${enc(runId)}/compare?a=${enc(state.a.item.id)}&b=${enc(state.b.item.id)}`);
  if (ticket !== state.ticket) return;
  state.comparison = comparison;
  window.__latentmap.comparison = comparison;
  state.matching = matchClusters(comparison);
  await ensureImages();
  renderScores();
  cells.set(null);
  await renderHeatmap();
  [state.pointsA, state.pointsB] = await Promise.all([pointsA, pointsB]);
  if (ticket !== state.ticket) return;
  await Promise.all([drawSide("a"), drawSide("b")]);
  state.atlas.preload({ parallel: 2 });
}

async function ensureImages() {
  if (state.atlas) return;
  try {
    state.atlas = new Atlas(await api.get(`/api/datasets/${enc(state.run.dataset)}`));
  } catch (error) {
    state.atlas = new Atlas({ name: state.run.dataset, n: (state.run.embedding_shape || [0])[0], atlas: null }, { available: false });
    toast(`The images of dataset ${state.run.dataset} cannot be shown: ${error.message}`, "error", 8000);
  }
  window.__latentmap.atlas = state.atlas;
  hoverCard = new HoverCard(state.atlas);
  cells = new SelectionPanel($("#cell-card"), {
    atlas: state.atlas,
    onPick: (index) => window.open(`/runs/${enc(runId)}?point=${index}&clustering=${enc(state.a.item.id)}`, "_blank"),
    onClear: () => {
      mapA.clearSelection();
      mapB.clearSelection();
      mapA.setHighlight(null);
      mapB.setHighlight(null);
    },
    fileName: () => `${runId}-compare-${cells.indices ? cells.indices.length : 0}.csv`,
  });
}

/** Draw one side's map, or say it has none and offer to compute it. */
async function drawSide(side) {
  const entry = side === "a" ? state.a : state.b;
  const points = side === "a" ? state.pointsA : state.pointsB;
  const view = side === "a" ? mapA : mapB;
  const missing = $(`#missing-${side}`);
  missing.hidden = points !== null;
  if (points === null) {
    $(`#missing-${side}-text`).textContent = `Run ${entry.run.id} has no finished map yet: the scores and the matrix above need none.`;
    const button = $(`#missing-${side}-button`);
    button.disabled = false;
    button.textContent = "Compute a PCA map (seconds)";
    button.onclick = () => computeMap(entry, button);
    return;
  }
  const coloring = side === "a" ? coloringA(points) : coloringB(points);
  await view.draw(points, coloring, `${side}:${points.projection.id}`);
}

async function computeMap(entry, button) {
  button.disabled = true;
  button.textContent = "Computing the map…";
  try {
    const created = await api.post(`/api/runs/${enc(entry.run.id)}/projections`, { method: "pca", params: {} });
    followJob(created.job_id, {
      onProgress: (job) => {
        button.textContent = `Computing the map… ${Math.round((job.progress || 0) * 100)}%`;
      },
      onEnd: (job) => {
        if (job.status !== "succeeded") {
          button.disabled = false;
          button.textContent = "Compute a PCA map (seconds)";
          toast(`The map ${job.status}${job.error ? `: ${job.error}` : ""}`, "error", 8000);
          return;
        }
        compare().catch((error) => showError(error.message));
      },
    });
  } catch (error) {
    button.disabled = false;
    button.textContent = "Compute a PCA map (seconds)";
    toast(error.message, "error", 8000);
  }
}

function entryById(id) {
  return state.clusterings.find((entry) => entry.item.id === id) || null;
}

async function start() {
  plotlyReady().catch((error) => showError(error.message));
  mapA = new MapView($("#map-a"), linkedHandlers(() => mapA, () => mapB));
  mapB = new MapView($("#map-b"), linkedHandlers(() => mapB, () => mapA));
  window.__latentmap.maps = { a: mapA, b: mapB };
  bindModes(document, [mapA, mapB]);
  try {
    const [methods] = await Promise.all([api.get("/api/methods").catch(() => null), loadClusterings()]);
    state.methods = methods;
  } catch (error) {
    showError(error.status === 404 ? `There is no run ${runId}.` : `The run could not be loaded: ${error.message}`);
    return;
  }
  $("#compare-subtitle").textContent = `${state.run.method} on ${state.run.dataset} · run ${runId} · hover or select on one map to see the same points on the other.`;
  const own = state.clusterings.filter((entry) => entry.run.id === runId);
  if (!own.length) {
    showError("This run has no finished clustering yet. Compute one on the run page first.");
    return;
  }
  state.a = entryById(query.get("a")) && entryById(query.get("a")).run.id === runId ? entryById(query.get("a")) : own[own.length - 1];
  state.b = entryById(query.get("b")) || state.clusterings.find((entry) => entry.item.id !== state.a.item.id) || null;
  if (query.get("a") && state.a.item.id !== query.get("a")) toast(`Clustering ${query.get("a")} is not a finished clustering of this run; showing ${state.a.item.id}`, "error", 8000);
  populatePickers();
  if (!state.b) {
    showError("There is only one clustering on this dataset. Compute a second one (another method or k) on the run page to compare.");
    return;
  }
  $("#pick-a").addEventListener("change", (event) => {
    state.a = entryById(event.target.value);
    compare().catch((error) => showError(error.message));
  });
  $("#pick-b").addEventListener("change", (event) => {
    state.b = entryById(event.target.value);
    compare().catch((error) => showError(error.message));
  });
  $("#swap-button").addEventListener("click", () => {
    if (state.b.run.id !== runId) {
      toast("A must be a clustering of this run; open the other run's compare page to swap", "error");
      return;
    }
    [state.a, state.b] = [state.b, state.a];
    populatePickers();
    compare().catch((error) => showError(error.message));
  });
  window.addEventListener("resize", () => {
    mapA.resize();
    mapB.resize();
  });
  try {
    await compare();
  } catch (error) {
    showError(error.message);
  }
}

start();
