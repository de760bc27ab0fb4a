// The scorecard over the map and the Run tab (scores, loss history, SSL health, reconstructions,
// configuration).

import { api } from "../api.js";
import { $, clear, el } from "../dom.js";
import { count, duration, fixed, humanName, percent, sig } from "../format.js";
import { plotlyReady } from "../plotly-loader.js";
import { chartLayout } from "./charts.js";
import { runPath, state } from "./context.js";

export function renderScores() {
  const run = state.run;
  const metrics = run.metrics || {};
  const projection = state.points && state.points.projection;
  const clustering = state.points && state.points.clustering;
  const pm = (projection && projection.metrics) || {};
  const cm = (clustering && clustering.metrics) || {};
  const stability = clustering && clustering.stability;
  const chips = [
    ["kNN accuracy", metrics.knn_accuracy, percent, "k-nearest-neighbour classification accuracy in the embedding"],
    ["Linear probe", metrics.linear_probe_accuracy, percent, "accuracy of a linear classifier trained on the embedding"],
    ["Trustworthiness", pm.trustworthiness, (v) => fixed(v, 3), "how well the 2-D map keeps embedding neighbourhoods (1 = perfectly)"],
    ["Neighbourhood kept", pm.neighbourhood_preservation, percent, "mean share of each point's 10 nearest neighbours in the embedding that are also among its 10 nearest on the map"],
    ["Clusters", cm.n_clusters, (v) => String(v), "clusters in the selected clustering"],
    ["Silhouette", cm.silhouette, (v) => fixed(v, 3), "cluster separation, −1 … 1"],
    ["Stability", stability ? stability.mean_ari : null, (v) => `ARI ${fixed(v, 2)}`, "mean pairwise ARI of the clustering rerun over seeds and bootstrap resamples"],
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
  if (typeof metrics.knn_accuracy_cosine === "number") add("kNN accuracy, cosine", percent(metrics.knn_accuracy_cosine));
  add("Linear probe", percent(metrics.linear_probe_accuracy));
  add("Final loss", sig(metrics.final_loss));
  add("Training time", duration(metrics.train_seconds));
  add("Images / s", metrics.images_per_second ? count(Math.round(metrics.images_per_second)) : "—");
  if (projection) add(`Trustworthiness (${projection.method})`, fixed(pm.trustworthiness, 3));
  if (projection && typeof pm.neighbourhood_preservation === "number") add(`Neighbourhood kept (${projection.method})`, percent(pm.neighbourhood_preservation));
  if (clustering) {
    add(`Silhouette (${clustering.method})`, fixed(cm.silhouette, 3));
    add("ARI / NMI vs labels", `${fixed(cm.ari, 3)} / ${fixed(cm.nmi, 3)}`);
  }
}

let runTabRendered = false;

export async function renderRunTab() {
  const run = state.run;
  const config = clear($("#run-config"));
  for (const [key, value] of Object.entries(run.config || {})) {
    if (value === null || value === undefined) continue;
    const text = typeof value === "object" ? Object.entries(value).map(([k, v]) => `${k}=${v}`).join(", ") || "—" : String(value);
    config.append(el("div", {}, el("dt", { text: humanName(key) }), el("dd", { text })));
  }
  // What training resolved (the encoder `auto` chose, the device, bf16 or float32): a figure is only comparable with its precision.
  for (const [key, value] of Object.entries(run.trained_with || {})) {
    config.append(el("div", { "data-trained-with": key }, el("dt", { text: `${humanName(key)} used` }), el("dd", { text: String(value) })));
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
