// Run page: wires the panels together. Live training (run/training.js) hands over to the map
// (run/map.js) with its pickers, point panel, selection, scorecard and Run tab, the analyses that
// follow it, the insight overlays (true neighbours, cluster stability), the Decoder tab of autoencoder
// runs and the timeline under the map. The view (projection, clustering, colouring, selected point)
// lives in the query string.

import { api, enc } from "./api.js";
import { $ } from "./dom.js";
import { HealthPanel } from "./health.js";
import { ACTIVE, followJob } from "./jobs.js";
import { plotlyReady } from "./plotly-loader.js";
import { bindAnalysisPanel, openAnalysisPanel, watchAnalyses } from "./run/analyses.js";
import { mark, refreshRun, runId, runPath, state } from "./run/context.js";
import { bindHeader, renderHeader, showError } from "./run/header.js";
import { bindDecoder, decodeAt } from "./run/decoder.js";
import { bindInsights } from "./run/insights.js";
import { bindFilters } from "./run/filters.js";
import { configureMap, loadPoints, overlay, pointsQuery, recolorMap } from "./run/map.js";
import { bindPickers, populatePickers } from "./run/pickers.js";
import { closePoint, selectPoint } from "./run/point.js";
import { renderRunTab, renderScores } from "./run/scores.js";
import { bindTabs, onTabOpen } from "./run/tabs.js";
import { bindTimeline } from "./run/timeline.js";
import { followTraining, showTraining, trainingEnded } from "./run/training.js";
import { methodName } from "./format.js";

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

/** An import's job scores the embedding and builds its neighbour graph: no training to show, the map waits for it. */
function followImport(run) {
  $("#map-section").hidden = false;
  const say = (job) => overlay("Importing the embedding: scoring it and building its neighbour graph…", job.progress || 0);
  say(run.job || {});
  followJob(run.job_id, {
    onProgress: say,
    onEnd: async (job) => {
      await refreshRun();
      if (job.status === "succeeded") await enterMap();
      else importEnded(job);
    },
  });
}

function importEnded(job) {
  overlay(null);
  showError(`The import ${job.status === "failed" ? `failed: ${job.error || "unknown error"}` : `was ${job.status}`}.`);
}

function bindStatic() {
  bindHeader();
  bindTabs();
  onTabOpen("run", () => state.run && renderRunTab());
  configureMap({ selectPoint, backgroundClick: decodeAt });
  bindPickers({ onReload: () => loadPoints(), onRecolor: recolorMap });
  bindAnalysisPanel();
  bindInsights();
  bindFilters();
  bindDecoder();
  bindTimeline();
  $("#point-close").addEventListener("click", closePoint);
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      if (!$("#analysis-panel").hidden) openAnalysisPanel(false);
      else if (state.view.point !== null && !$("#point-detail").hidden) closePoint();
    }
  });
  window.addEventListener("resize", () => window.__latentmap.map && window.__latentmap.map.resize());
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
  // The guess is wrong while the run is still training or importing (its points request answered 409):
  // the map loads afresh once the run's job ends.
  if (run.status !== "succeeded") state.prefetch = null;
  state.datasetPromise = (run.config || {}).has_images === false
    ? Promise.reject(new Error("this import brought no images"))
    : api.get(`/api/datasets/${enc(run.dataset)}`);
  state.datasetPromise.catch(() => {});
  state.methods = await methods;
  renderHeader();
  if (ACTIVE.has(run.status) && run.method === "imported") {
    followImport(run);
    return;
  }
  if (ACTIVE.has(run.status)) {
    await showTraining(run);
    followTraining(run, { onSucceeded: enterMap });
    return;
  }
  if (run.status !== "succeeded") {
    if (run.job && run.method === "imported") importEnded({ ...run.job, status: run.status });
    else if (run.job) trainingEnded(run.job);
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
