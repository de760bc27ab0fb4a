// Number, time and name formatting shared by the pages.

export function fixed(value, digits = 3) {
  if (value === null || value === undefined || Number.isNaN(value)) return "—";
  return Number(value).toFixed(digits);
}

export function percent(value, digits = 1) {
  if (value === null || value === undefined || Number.isNaN(value)) return "—";
  return `${(100 * value).toFixed(digits)}%`;
}

export function count(value) {
  if (value === null || value === undefined) return "—";
  return Number(value).toLocaleString("en-US");
}

/** Loss-like values: 4 significant digits, scientific notation when tiny. */
export function sig(value, digits = 4) {
  if (value === null || value === undefined || Number.isNaN(value)) return "—";
  const v = Number(value);
  if (v !== 0 && Math.abs(v) < 1e-3) return v.toExponential(2);
  return String(Number(v.toPrecision(digits)));
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "—";
  if (seconds < 10) return `${Math.max(0, seconds).toFixed(1)} s`;
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(s % 60).padStart(2, "0")} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, "0")} min`;
}

/** Creation time (epoch seconds or ISO text) as "today 14:02", "Mar 3 09:15" or a full date. */
export function when(value) {
  if (value === null || value === undefined) return "—";
  const date = typeof value === "number" ? new Date(value * 1000) : new Date(value);
  if (Number.isNaN(date.getTime())) return String(value);
  const now = new Date();
  const time = date.toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit" });
  if (date.toDateString() === now.toDateString()) return `today ${time}`;
  const sameYear = date.getFullYear() === now.getFullYear();
  const day = date.toLocaleDateString("en-US", { month: "short", day: "numeric", year: sameYear ? undefined : "numeric" });
  return `${day} ${time}`;
}

export function isoWhen(value) {
  if (value === null || value === undefined) return "";
  const date = typeof value === "number" ? new Date(value * 1000) : new Date(value);
  return Number.isNaN(date.getTime()) ? "" : date.toISOString();
}

/** "noise_std" → "Noise std"; "lr" → "Learning rate" and a few other well-known names. */
const NAMES = {
  lr: "Learning rate",
  embedding_dim: "Embedding size",
  batch_size: "Batch size",
  epochs: "Epochs",
  seed: "Seed",
  noise_std: "Noise level (std)",
  l1_weight: "L1 weight",
  contractive_weight: "Contractive penalty weight",
  temperature: "Temperature",
  augmentation_strength: "Augmentation strength",
  n_components: "Dimensions",
  n_neighbors: "Neighbours",
  min_dist: "Min distance",
  n_epochs: "Layout epochs",
  n_iter: "Iterations",
  n_clusters: "Clusters (k)",
  n_init: "Restarts",
  eps: "eps (radius)",
  min_samples: "Min samples",
  min_cluster_size: "Min cluster size",
  knn_agreement: "kNN label agreement",
};

export function humanName(name) {
  if (NAMES[name]) return NAMES[name];
  const words = String(name).replace(/_/g, " ");
  return words.charAt(0).toUpperCase() + words.slice(1);
}

const METHOD_NAMES = {
  pca: "PCA",
  tsne: "t-SNE",
  umap: "UMAP",
  kmeans: "k-means",
  dbscan: "DBSCAN",
  hdbscan: "HDBSCAN",
  agglomerative: "Agglomerative",
};

/** The name people read for a method: the server's label when it has a real one, else ours. */
export function methodName(name, info) {
  if (info && info.label && info.label !== name) return info.label;
  return METHOD_NAMES[name] || name;
}

/**
 * A short description of a projection or clustering, e.g. "UMAP · min_dist 0.3" or "k-means · k=10":
 * only parameters that differ from the method's defaults (registry: /api/methods' projections or
 * clusterings), and "on a projection" for clusterings not made on the embedding.
 */
export function analysisTitle(analysis, registry = {}) {
  if (!analysis) return "";
  const info = registry[analysis.method];
  const defaults = Object.fromEntries(((info && info.params) || []).map((spec) => [spec.name, spec.default]));
  const parts = Object.entries(analysis.params || {})
    .filter(([key, value]) => value !== null && value !== undefined)
    .filter(([key, value]) => key === "n_clusters" || !(key in defaults) || defaults[key] !== value)
    .filter(([key, value]) => !(key === "n_components" && value === 2))
    .map(([key, value]) => (key === "n_clusters" ? `k=${value}` : `${key} ${value}`));
  const on = analysis.on && analysis.on !== "embedding" ? ["on a projection"] : [];
  return [methodName(analysis.method, info), ...parts, ...on].join(" · ");
}
