// "New projection / clustering": the form that starts one, and the job chips that follow every
// running projection or clustering of the run until the map can show it.

import { api, fieldErrors } from "../api.js";
import { $, el, setOptions, toast } from "../dom.js";
import { analysisTitle, methodName } from "../format.js";
import { ACTIVE, followJob } from "../jobs.js";
import { paramFields, setError } from "../params.js";
import { refreshRun, registryOf, runPath, state, writeView } from "./context.js";
import { loadPoints, overlay, renderMapStatus } from "./map.js";
import { populatePickers } from "./pickers.js";

let analysisFields = null;

function analysisKind() {
  return document.querySelector('#analysis-panel input[name="kind"]:checked').value;
}

export async function openAnalysisPanel(open) {
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
    const projectionRegistry = registryOf("projections");
    setOptions($("#analysis-on"), [{ value: "embedding", text: "the embedding" }, ...projections.map((item) => ({ value: item.id, text: `projection: ${analysisTitle(item, projectionRegistry)}` }))]);
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
export function watchAnalyses() {
  for (const item of state.run.projections) if (ACTIVE.has(item.status)) followAnalysis(item, "projection");
  for (const item of state.run.clusterings) if (ACTIVE.has(item.status)) followAnalysis(item, "clustering");
}

/**
 * A chip in the toolbar that follows one job of the run to its end: item {job_id, kind}, the chip's
 * label, onProgress(job, fraction) while it runs and onEnd(job) once it has ended.
 */
export function followJobChip(item, { label, onProgress = () => {}, onEnd }) {
  if (!item.job_id || state.followers.has(item.job_id)) return;
  const chip = el(
    "span",
    { class: "job-chip", dataset: { jobId: item.job_id, kind: item.kind || "" } },
    el("span", { class: "job-chip-name", text: label }),
    el("span", { class: "progress tiny" }, el("span", { class: "progress-bar" })),
    el("span", { class: "job-chip-text", text: "queued" }),
  );
  $("#job-chips").append(chip);
  const follower = followJob(item.job_id, {
    onProgress: (job) => {
      const fraction = job.progress || 0;
      chip.querySelector(".progress-bar").style.width = `${(fraction * 100).toFixed(0)}%`;
      chip.querySelector(".job-chip-text").textContent = job.status === "queued" ? "queued" : `${Math.round(fraction * 100)}%`;
      onProgress(job, fraction);
    },
    onEnd: async (job) => {
      state.followers.delete(item.job_id);
      chip.remove();
      await onEnd(job);
    },
  });
  state.followers.set(item.job_id, follower);
}

function followAnalysis(item, kind, { select = false } = {}) {
  followJobChip(
    { ...item, kind },
    {
      label: methodName(item.method, registryOf(kind === "projection" ? "projections" : "clusterings")[item.method]),
      onProgress: (job, fraction) => {
        if (kind !== "projection") return;
        if (!state.points) overlay(`Computing the ${methodName(item.method)} projection…`, fraction);
        state.projectionProgress.set(item.id, job.status === "queued" ? null : fraction);
        renderMapStatus();
      },
      onEnd: async (job) => {
        state.projectionProgress.delete(item.id);
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
    },
  );
}

export function bindAnalysisPanel() {
  $("#new-analysis-button").addEventListener("click", () => openAnalysisPanel($("#analysis-panel").hidden));
  $("#analysis-close").addEventListener("click", () => openAnalysisPanel(false));
  for (const radio of document.querySelectorAll('#analysis-panel input[name="kind"]')) radio.addEventListener("change", buildAnalysisForm);
  $("#analysis-method").addEventListener("change", buildAnalysisForm);
  $("#analysis-panel").addEventListener("submit", submitAnalysis);
}
