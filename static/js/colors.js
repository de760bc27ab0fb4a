// Colours for categories (labels, clusters) and continuous per-point values.

// Tableau 10 followed by a second set of ten distinct hues; beyond twenty, golden-angle hues.
const CATEGORY_COLORS = [
  "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
  "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#17becf", "#bcbd22", "#8c564b", "#e377c2", "#ff7f0e", "#393b79",
];

export const NOISE_COLOR = "#c3c7cf";
export const HIGHLIGHT_COLOR = "#111827";

export function categoryColor(index) {
  if (index < 0) return NOISE_COLOR;
  if (index < CATEGORY_COLORS.length) return CATEGORY_COLORS[index];
  const hue = (index * 137.508) % 360;
  return `hsl(${hue.toFixed(1)}, 62%, ${index % 2 ? 42 : 56}%)`;
}

export const CONTINUOUS_SCALE = "Viridis";
