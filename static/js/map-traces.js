// The Plotly traces of an embedding map, built from typed arrays: one trace per category (so the
// legend toggles labels or clusters) or one with a colour scale, then the overlays (highlighted,
// marked and focused points); and the colourings a map can have (coloringFor).

import { categoryColor, CONTINUOUS_SCALE, HIGHLIGHT_COLOR, NOISE_COLOR } from "./colors.js";

// Past this many categories the legend stops helping: draw one trace with a colour per point.
const MAX_LEGEND_CATEGORIES = 40;

/**
 * Text for Plotly labels: Plotly reads <b>, <br>, <a> and entities in trace names as markup, so a
 * folder name such as "<b>cats</b>" is escaped to show literally, as text.
 */
export function plotlyText(value) {
  return String(value).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function markerSize(n) {
  if (n <= 2500) return 6;
  if (n <= 12000) return 4.5;
  if (n <= 40000) return 3.5;
  return 2.8;
}

/** [min, max] of a typed array in one pass ([Infinity, -Infinity] when empty). */
function minMax(values) {
  let low = Infinity;
  let high = -Infinity;
  for (let i = 0; i < values.length; i += 1) {
    const v = values[i];
    if (v < low) low = v;
    if (v > high) high = v;
  }
  return [low, high];
}

/** [min, max] of x and y, padded by 4% (a point on the edge stays whole), for the axis ranges. */
export function extentOf(x, y) {
  const range = (values) => {
    const [low, high] = minMax(values);
    if (!Number.isFinite(low)) return [-1, 1];
    const pad = (high - low || 1) * 0.04;
    return [low - pad, high + pad];
  };
  return { x: range(x), y: range(y) };
}

/** Indices (Int32Array) of every point whose code is `code`, for every code present. */
function groupByCode(codes) {
  const counts = new Map();
  for (let i = 0; i < codes.length; i += 1) counts.set(codes[i], (counts.get(codes[i]) || 0) + 1);
  const groups = new Map();
  for (const [code, size] of counts) groups.set(code, { indices: new Int32Array(size), fill: 0 });
  for (let i = 0; i < codes.length; i += 1) {
    const group = groups.get(codes[i]);
    group.indices[group.fill] = i;
    group.fill += 1;
  }
  return new Map([...groups].map(([code, group]) => [code, group.indices]));
}

function gather(source, indices) {
  const out = new Float32Array(indices.length);
  for (let j = 0; j < indices.length; j += 1) out[j] = source[indices[j]];
  return out;
}

/**
 * The traces of `points` ({n, x, y}) coloured by `coloring` (coloringFor), overlays last; `index[t]`
 * maps trace t's point numbers to dataset indices (null: the identity), `baseTraces` counts the
 * traces before the overlays (which repeat base points).
 */
export function mapTraces(points, chosenColoring, { highlighted = null, marked = null, focused = null } = {}) {
  const { x, y, n } = points;
  const coloring = chosenColoring || { mode: "none" };
  const size = markerSize(n);
  const opacity = highlighted ? 0.22 : n > 20000 ? 0.75 : 0.88;
  const traces = [];
  const index = [];
  const base = { type: "scattergl", mode: "markers", hoverinfo: "none", showlegend: true };

  if ((coloring.mode === "label" || coloring.mode === "cluster") && coloring.codes) {
    const colorOf = coloring.colorOf || ((code) => (code < 0 ? NOISE_COLOR : categoryColor(code)));
    const groups = groupByCode(coloring.codes);
    const codes = [...groups.keys()].sort((a, b) => (a < 0) - (b < 0) || a - b); // noise last
    if (codes.length <= MAX_LEGEND_CATEGORIES) {
      for (const code of codes) {
        const members = groups.get(code);
        const memberX = gather(x, members);
        // A filter hides points by making their coordinates NaN: the legend counts the points shown.
        const shown = memberX.reduce((sum, value) => sum + Number.isFinite(value), 0);
        traces.push({
          ...base,
          name: `${plotlyText(coloring.nameOf(code))} · ${shown.toLocaleString("en-US")}`,
          legendgroup: String(code),
          x: memberX,
          y: gather(y, members),
          marker: { size, color: colorOf(code), opacity: code < 0 ? opacity * 0.6 : opacity },
        });
        index.push(members);
      }
    } else {
      const palette = new Map(codes.map((code) => [code, colorOf(code)]));
      const colors = new Array(n);
      for (let i = 0; i < n; i += 1) colors[i] = palette.get(coloring.codes[i]);
      traces.push({ ...base, name: `${codes.length} ${coloring.mode === "label" ? "labels" : "clusters"}`, x, y, marker: { size, color: colors, opacity } });
      index.push(null);
    }
  } else if (coloring.mode === "value" && coloring.values) {
    traces.push({
      ...base,
      showlegend: false,
      name: coloring.valueName,
      x,
      y,
      marker: {
        size,
        opacity,
        color: coloring.values,
        colorscale: CONTINUOUS_SCALE,
        cmin: coloring.range ? coloring.range[0] : undefined,
        cmax: coloring.range ? coloring.range[1] : undefined,
        showscale: true,
        colorbar: { title: { text: plotlyText(coloring.valueLabel || coloring.valueName), side: "right" }, thickness: 12, len: 0.6, outlinewidth: 0 },
      },
    });
    index.push(null);
  } else {
    traces.push({ ...base, showlegend: false, name: "points", x, y, marker: { size, color: "#4e79a7", opacity } });
    index.push(null);
  }
  const baseTraces = traces.length;

  if (highlighted) {
    const members = highlighted;
    traces.push({
      ...base,
      showlegend: false,
      name: "highlighted",
      x: gather(x, members),
      y: gather(y, members),
      marker: { size: size + 3, color: HIGHLIGHT_COLOR, opacity: 0.95, line: { width: 1, color: "#ffffff" } },
    });
    index.push(members);
  }
  if (marked) {
    const members = marked;
    traces.push({
      ...base,
      showlegend: false,
      name: "true neighbours",
      x: gather(x, members),
      y: gather(y, members),
      marker: { size: Math.max(11, size * 2.2), symbol: "circle-open", color: "#111827", opacity: 0.9, line: { width: 2 } },
    });
    index.push(members);
  }
  if (focused !== null && focused < n) {
    const members = Int32Array.of(focused);
    traces.push({
      ...base,
      showlegend: false,
      name: "selected point",
      x: gather(x, members),
      y: gather(y, members),
      marker: { size: Math.max(14, size * 3), color: "rgba(255,255,255,0)", line: { width: 3, color: "#e11d48" } },
    });
    index.push(members);
  }
  return { traces, index, baseTraces };
}


export function coloringFor(points, mode) {
  if (mode === "label" && points.label) {
    const names = points.class_names || [];
    return { mode: "label", codes: points.label, legendTitle: "label", nameOf: (code) => (names[code] !== undefined ? String(names[code]) : String(code)) };
  }
  if (mode === "cluster" && points.cluster) {
    return { mode: "cluster", codes: points.cluster, legendTitle: "cluster", nameOf: (code) => (code < 0 ? "noise" : `cluster ${code}`) };
  }
  if (mode && mode.startsWith("value:")) {
    const name = mode.slice(6);
    const values = points.values && points.values[name];
    if (values) return { mode: "value", values, valueName: name, range: minMax(values) };
  }
  return { mode: "none" };
}
