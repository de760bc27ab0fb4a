// The training panel: live progress, loss curve, SSL health and cancel while the run trains.
// followTraining(run, { onSucceeded }) hands over to the map when training finishes.

import { api, enc } from "../api.js";
import { $, toast } from "../dom.js";
import { count, duration, sig } from "../format.js";
import { HealthPanel } from "../health.js";
import { ACTIVE, followJob } from "../jobs.js";
import { plotlyReady } from "../plotly-loader.js";
import { chartLayout } from "./charts.js";
import { refreshRun, state } from "./context.js";
import { showError, showStatus } from "./header.js";

const training = { chart: null, x: [], y: [], pending: [], frame: 0, started: null, health: null };

export async function showTraining(run) {
  const panel = $("#training-panel");
  panel.hidden = false;
  const job = run.job;
  training.started = job && job.started ? job.started * 1000 : Date.now();
  training.health = new HealthPanel($("#health-live"), { dim: (run.config || {}).embedding_dim, banner: $("#health-warning") });
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

/** Follow the run's training job; onSucceeded() runs once the finished run has been reloaded. */
export function followTraining(run, { onSucceeded }) {
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
          await onSucceeded();
        } else {
          trainingEnded(job);
        }
      },
    }),
  );
}

export function trainingEnded(job) {
  const reason = job.status === "cancelled" ? "Training was cancelled." : job.status === "interrupted" ? "Training was interrupted (the server stopped)." : `Training failed: ${job.error || "unknown error"}`;
  showError(`${reason} Start a new run from the home page${job.status !== "failed" ? ", or resume it with POST /api/jobs/{id}/resume" : ""}.`);
}
