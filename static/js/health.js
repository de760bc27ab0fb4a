// SSL health panel of a contrastive run: live curves of alignment, uniformity, per-dimension std
// of the normalised embedding (against 1/√d) and the monitor kNN accuracy, epoch by epoch, with a
// warning banner when the embedding collapses. Rows come from history.json (finished epochs) and
// from the training job's progress events (`metrics.health`: the last epochs' rows; see
// ml/training.py and ml/ssl_health.py for what each value means).

import { clear, el } from "./dom.js";
import { fixed, percent } from "./format.js";
import { plotlyReady } from "./plotly-loader.js";

/**
 * Uniformity (t = 2) of points spread uniformly on the sphere S^{d−1}: −4 + log ₀F₁(; d/2; 4), the
 * value ml.ssl_health.uniform_sphere_uniformity gives; the series converges within 30 terms.
 */
export function sphereUniformity(dim) {
  let term = 1;
  let sum = 1;
  for (let k = 0; k < 40; k += 1) {
    term *= 4 / ((k + 1) * (dim / 2 + k));
    sum += term;
  }
  return -4 + Math.log(sum);
}

const CHARTS = [
  {
    key: "alignment",
    title: "Alignment",
    hint: "distance between two views of an image (lower: the views agree; 0 is also what collapse gives)",
    color: "#0d9488",
  },
  {
    key: "uniformity",
    title: "Uniformity",
    hint: "how evenly the images spread on the sphere (lower: more spread; 0: all in one point)",
    color: "#d97706",
    reference: (dim) => ({ value: sphereUniformity(dim), label: "uniform sphere" }),
  },
  {
    key: "embedding_std",
    title: "Per-dimension std",
    hint: "of the normalised embeddings: ≈ 1/√d when healthy, → 0 on collapse",
    color: "#7c3aed",
    reference: (dim) => ({ value: 1 / Math.sqrt(dim), label: "1/√d" }),
    floor: 0,
  },
  {
    key: "monitor_knn_accuracy",
    title: "Monitor kNN-5",
    hint: "leave-one-out accuracy on 512 fixed labelled images",
    color: "#2563eb",
    format: (value) => percent(value),
    floor: 0,
    labelsOnly: true,
  },
];

const WARNINGS = {
  collapsed: (row, dim) =>
    `The embedding has collapsed (epoch ${row.epoch}): the per-dimension std of the normalised embeddings is ${fixed(row.embedding_std, 4)}, ` +
    `where a healthy embedding has about 1/√${dim} = ${fixed(1 / Math.sqrt(dim), 3)}. The images map to nearly one direction, so the map and ` +
    "its neighbours say little. Try a lower learning rate, stronger augmentation, or (BYOL, MoCo) a momentum closer to 1.",
  diverged: (row) =>
    `The training diverged (epoch ${row.epoch}): the embeddings are no longer finite numbers. Start a new run with a lower learning rate.`,
  partial: (row, dim) =>
    `The embedding fills only a few of its ${dim} dimensions (epoch ${row.epoch}: std × √d = ${fixed(row.embedding_std_ratio, 2)}, ` +
    "healthy ≈ 0.4–1). It may be collapsing; watch the curves.",
};

export class HealthPanel {
  /**
   * root: the element the panel fills (hidden until a health row arrives); banner: the element the
   * collapse warning goes in (shared by the page's panels); dim: the embedding size d.
   */
  constructor(root, { dim, banner = null }) {
    this.root = root;
    this.banner = banner;
    this.dim = Number(dim) || 1;
    this.rows = new Map(); // epoch → row
    this.frame = 0;
    this.charts = new Map();
    this.observer = new ResizeObserver(() => this.schedule());
    this.observer.observe(root);
  }

  /** Merge rows ({epoch, alignment, uniformity, embedding_std, ...}; others are ignored), then redraw. */
  update(rows) {
    let changed = false;
    for (const row of rows || []) {
      if (!row || row.verdict === undefined || row.epoch === undefined) continue;
      const known = this.rows.get(row.epoch);
      if (known && known.verdict === row.verdict && known.embedding_std === row.embedding_std) continue;
      this.rows.set(row.epoch, row);
      changed = true;
    }
    if (!changed) return;
    this.renderBanner();
    this.schedule();
  }

  /** The rows in epoch order. */
  ordered() {
    return [...this.rows.values()].sort((a, b) => a.epoch - b.epoch);
  }

  renderBanner() {
    if (!this.banner) return;
    const rows = this.ordered();
    const last = rows[rows.length - 1];
    const message = last && WARNINGS[last.verdict] ? WARNINGS[last.verdict](last, this.dim) : null;
    this.banner.hidden = !message;
    this.banner.textContent = message || "";
    this.banner.dataset.verdict = last ? last.verdict : "";
    this.banner.classList.toggle("banner-warning", Boolean(last) && last.verdict === "partial");
  }

  schedule() {
    if (!this.frame) this.frame = requestAnimationFrame(() => this.draw());
  }

  build(rows) {
    clear(this.root);
    const labelled = rows.some((row) => row.monitor_knn_accuracy !== null && row.monitor_knn_accuracy !== undefined);
    const grid = el("div", { class: "health-grid" });
    for (const chart of CHARTS) {
      if (chart.labelsOnly && !labelled) continue;
      const plot = el("div", { class: "health-plot", dataset: { metric: chart.key } });
      const value = el("span", { class: "health-value" });
      grid.append(
        el(
          "figure",
          { class: "health-chart" },
          el("figcaption", {}, el("span", { class: "health-title", text: chart.title }), value, el("span", { class: "health-hint", text: chart.hint })),
          plot,
        ),
      );
      this.charts.set(chart.key, { chart, plot, value });
    }
    this.root.append(el("h3", { class: "subhead", text: "SSL health" }), grid);
  }

  async draw() {
    this.frame = 0;
    const rows = this.ordered();
    this.root.hidden = rows.length === 0;
    if (!rows.length || this.root.offsetWidth === 0) return; // drawn when shown: Plotly sizes from the box
    const labelled = rows.some((row) => row.monitor_knn_accuracy !== null && row.monitor_knn_accuracy !== undefined);
    if (!this.charts.size || (labelled && !this.charts.has("monitor_knn_accuracy"))) this.build(rows);
    const Plotly = await plotlyReady();
    const epochs = rows.map((row) => row.epoch);
    for (const { chart, plot, value } of this.charts.values()) {
      const ys = rows.map((row) => row[chart.key]);
      const last = ys[ys.length - 1];
      value.textContent = chart.format ? chart.format(last) : fixed(last, 3);
      const traces = [{ type: "scatter", mode: "lines+markers", x: epochs, y: ys, line: { color: chart.color, width: 2 }, marker: { size: 4 }, hovertemplate: `epoch %{x}<br>${chart.title.toLowerCase()} %{y:.4g}<extra></extra>` }];
      const shapes = [];
      const annotations = [];
      if (chart.reference) {
        const reference = chart.reference(this.dim);
        shapes.push({ type: "line", xref: "paper", x0: 0, x1: 1, y0: reference.value, y1: reference.value, line: { color: "#9ca3af", width: 1.5, dash: "dash" } });
        annotations.push({ xref: "paper", x: 1, y: reference.value, xanchor: "right", yanchor: "bottom", text: reference.label, showarrow: false, font: { size: 10, color: "#6b7280" } });
      }
      const values = ys.filter(Number.isFinite).concat(chart.reference ? [chart.reference(this.dim).value] : []);
      const low = values.length ? Math.min(...values, chart.floor ?? Infinity) : 0;
      const high = values.length ? Math.max(...values) : 1;
      const pad = (high - low) * 0.08 || 0.05;
      const layout = {
        margin: { l: 44, r: 8, t: 4, b: 28 },
        height: 140,
        paper_bgcolor: "rgba(0,0,0,0)",
        plot_bgcolor: "#ffffff",
        xaxis: { gridcolor: "#eef0f3", zeroline: false, dtick: epochs.length > 12 ? undefined : 1, range: [0.5, Math.max(...epochs) + 0.5] },
        yaxis: { gridcolor: "#eef0f3", zeroline: false, range: [low - pad, high + pad] },
        font: { family: "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", size: 10, color: "#374151" },
        showlegend: false,
        shapes,
        annotations,
      };
      await Plotly.react(plot, traces, layout, { displayModeBar: false, responsive: true });
      plot.dataset.points = String(ys.length);
    }
    this.root.dataset.epochs = String(rows.length);
  }
}
