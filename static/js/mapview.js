// One embedding map: Plotly scattergl (WebGL) over typed arrays, one trace per category (so the
// legend toggles labels or clusters), overlay traces for highlighted and focused points, and
// events translated back to dataset indices. No per-point DOM, no per-point objects.

import { categoryColor, CONTINUOUS_SCALE, HIGHLIGHT_COLOR, NOISE_COLOR } from "./colors.js";
import { plotlyReady } from "./plotly-loader.js";

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

/** [min, max] of x and y, padded by 4% (a point on the edge stays whole), for the axis ranges. */
function extentOf(x, y) {
  const range = (values) => {
    let low = Infinity;
    let high = -Infinity;
    for (let i = 0; i < values.length; i += 1) {
      const v = values[i];
      if (v < low) low = v;
      if (v > high) high = v;
    }
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

export class MapView {
  /**
   * container: the element Plotly draws into.
   * handlers: onHover(index, mouseEvent), onUnhover(), onClick(index), onSelect(Int32Array), onDeselect(),
   * onDrawn(), onBackgroundClick(x, y) (a click on the map away from every point, in map coordinates)
   */
  constructor(container, handlers = {}) {
    this.container = container;
    this.handlers = handlers;
    this.points = null;
    this.coloring = null;
    this.traceIndex = []; // trace number → Int32Array of dataset indices
    this.baseTraces = 0;
    this.highlighted = null; // Int32Array or null
    this.marked = null; // Int32Array or null: rings where some points sit (a point's true neighbours)
    this.focused = null; // dataset index or null
    this.dragmode = "pan";
    this.revision = 0;
    this.ring = null;
    this.drawnOnce = false;
  }

  /**
   * Draw `points` ({n, x, y}) coloured by `coloring` (see colorTraces); keeps zoom within one `viewKey`.
   * `extent` ({x: [min, max], y: [min, max]}) fixes the axes, e.g. over every frame of an animation.
   */
  async draw(points, coloring, viewKey = "map", { extent = null } = {}) {
    const Plotly = await plotlyReady();
    this.Plotly = Plotly;
    this.points = points;
    this.coloring = coloring;
    this.viewKey = viewKey;
    this.extent = extent || extentOf(points.x, points.y);
    this.highlighted = null;
    this.marked = null;
    this.focused = null;
    await this.render();
    if (!this.drawnOnce) {
      this.drawnOnce = true;
      this.bindEvents();
    }
  }

  async recolor(coloring) {
    this.coloring = coloring;
    await this.render();
  }

  async setHighlight(indices) {
    this.highlighted = indices && indices.length ? indices : null;
    await this.render();
  }

  async setMarked(indices) {
    this.marked = indices && indices.length ? indices : null;
    await this.render();
  }

  /** The same points at new coordinates (an animation frame): colours, overlays and axes stay. */
  async moveTo(x, y) {
    this.points = { ...this.points, x, y };
    await this.render();
  }

  async setFocus(index) {
    this.focused = index === null || index === undefined ? null : index;
    await this.render();
  }

  async setDragmode(mode) {
    this.dragmode = mode;
    if (this.Plotly && this.drawnOnce) await this.Plotly.relayout(this.container, { dragmode: mode });
  }

  async resetView() {
    if (this.Plotly && this.drawnOnce) {
      await this.Plotly.relayout(this.container, { "xaxis.range": this.extent.x.slice(), "yaxis.range": this.extent.y.slice() });
    }
  }

  async clearSelection() {
    if (this.Plotly && this.drawnOnce) {
      // Dropping the selection shapes and every trace's selectedpoints restores full opacity.
      await this.Plotly.relayout(this.container, { selections: [] });
      await this.Plotly.restyle(this.container, { selectedpoints: [null] });
    }
  }

  resize() {
    if (this.Plotly && this.drawnOnce) this.Plotly.Plots.resize(this.container);
  }

  buildTraces() {
    const { x, y, n } = this.points;
    const coloring = this.coloring || { mode: "none" };
    const size = markerSize(n);
    const opacity = this.highlighted ? 0.22 : n > 20000 ? 0.75 : 0.88;
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
          traces.push({
            ...base,
            name: `${plotlyText(coloring.nameOf(code))} · ${members.length.toLocaleString("en-US")}`,
            legendgroup: String(code),
            x: gather(x, members),
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
    this.baseTraces = traces.length;

    if (this.highlighted) {
      const members = this.highlighted;
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
    if (this.marked) {
      const members = this.marked;
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
    if (this.focused !== null && this.focused < n) {
      const members = Int32Array.of(this.focused);
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
    this.traceIndex = index;
    return traces;
  }

  layout() {
    return {
      uirevision: this.viewKey,
      dragmode: this.dragmode,
      hovermode: "closest",
      hoverdistance: 12,
      margin: { l: 8, r: 8, t: 8, b: 8 },
      paper_bgcolor: "rgba(0,0,0,0)",
      plot_bgcolor: "#ffffff",
      // Ranges we computed once: Plotly's autorange would scan every point of every trace again
      // (a few hundred ms at 70,000 points). No locked aspect ratio: a PCA map is often far wider
      // than tall, and would be a thin strip.
      xaxis: { visible: false, showgrid: false, zeroline: false, autorange: false, range: this.extent.x.slice() },
      yaxis: { visible: false, showgrid: false, zeroline: false, autorange: false, range: this.extent.y.slice() },
      legend: {
        itemsizing: "constant",
        bgcolor: "rgba(255,255,255,0)",
        font: { size: 11 },
        x: 1.005,
        xanchor: "left",
        y: 1,
        title: { text: this.coloring && this.coloring.legendTitle ? this.coloring.legendTitle : "" },
      },
      selectdirection: "any",
      newselection: { line: { color: "#4f46e5", width: 1.5, dash: "dot" } },
    };
  }

  async render() {
    if (!this.points) return;
    const traces = this.buildTraces();
    const config = { responsive: true, scrollZoom: true, displaylogo: false, displayModeBar: false, doubleClick: "reset" };
    this.revision += 1;
    await this.Plotly.react(this.container, traces, this.layout(), config);
    // Resolve after the browser has painted the WebGL frame, so "drawn" means visible.
    await new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));
    if (this.handlers.onDrawn) this.handlers.onDrawn();
  }

  /** Dataset index behind a Plotly event point. */
  indexOf(point) {
    const members = this.traceIndex[point.curveNumber];
    const number = point.pointNumber ?? point.pointIndex;
    if (members === undefined) return null;
    return members === null ? number : members[number];
  }

  bindEvents() {
    const gd = this.container;
    gd.on("plotly_hover", (event) => {
      const point = event.points && event.points[0];
      if (!point) return;
      const index = this.indexOf(point);
      if (index !== null && this.handlers.onHover) this.handlers.onHover(index, event.event);
    });
    gd.on("plotly_unhover", () => this.handlers.onUnhover && this.handlers.onUnhover());
    gd.on("plotly_click", (event) => {
      const point = event.points && event.points[0];
      if (!point) return;
      this.pointClickedAt = performance.now();
      const index = this.indexOf(point);
      if (index !== null && this.handlers.onClick) this.handlers.onClick(index);
    });
    gd.on("plotly_selected", (event) => {
      if (!event || !event.points) return;
      const seen = new Uint8Array(this.points.n);
      let count = 0;
      for (const point of event.points) {
        if (point.curveNumber >= this.baseTraces) continue; // overlays repeat base points
        const index = this.indexOf(point);
        if (index !== null && !seen[index]) {
          seen[index] = 1;
          count += 1;
        }
      }
      const indices = new Int32Array(count);
      for (let i = 0, j = 0; i < seen.length; i += 1) if (seen[i]) indices[j++] = i;
      if (this.handlers.onSelect) this.handlers.onSelect(indices);
    });
    gd.on("plotly_deselect", () => this.handlers.onDeselect && this.handlers.onDeselect());
    gd.addEventListener("mouseleave", () => this.handlers.onUnhover && this.handlers.onUnhover());
    this.bindBackgroundClick();
  }

  /**
   * A click that is not on a point (no plotly_click just before it) and not the end of a drag
   * reports its map coordinates: Plotly only reports clicks on points.
   */
  bindBackgroundClick() {
    const gd = this.container;
    let down = null;
    gd.addEventListener("pointerdown", (event) => {
      down = { x: event.clientX, y: event.clientY };
    });
    gd.addEventListener("click", (event) => {
      if (!this.handlers.onBackgroundClick || !down) return;
      const moved = Math.hypot(event.clientX - down.x, event.clientY - down.y);
      if (moved > 4 || performance.now() - (this.pointClickedAt || -1e9) < 300) return;
      const layout = gd._fullLayout;
      if (!layout) return;
      const box = gd.getBoundingClientRect();
      const xa = layout.xaxis;
      const ya = layout.yaxis;
      const px = event.clientX - box.left - xa._offset;
      const py = event.clientY - box.top - ya._offset;
      if (px < 0 || px > xa._length || py < 0 || py > ya._length) return;
      this.handlers.onBackgroundClick(xa.p2l(px), ya.p2l(py));
    });
  }

  /** Screen position (client pixels) of dataset point `index`, or null when outside the view. */
  screenPosition(index) {
    const layout = this.container._fullLayout;
    if (!layout || !this.points) return null;
    const xa = layout.xaxis;
    const ya = layout.yaxis;
    const px = xa._offset + xa.l2p(this.points.x[index]);
    const py = ya._offset + ya.l2p(this.points.y[index]);
    if (px < xa._offset || px > xa._offset + xa._length || py < ya._offset || py > ya._offset + ya._length) return null;
    const box = this.container.getBoundingClientRect();
    return { x: box.left + px, y: box.top + py, localX: px, localY: py };
  }

  /** A ring over point `index` (linked hover from another map); null hides it. HTML, not a redraw. */
  showRing(index) {
    if (!this.ring) {
      this.ring = document.createElement("div");
      this.ring.className = "linked-ring";
      this.container.style.position = "relative";
      this.container.append(this.ring);
    }
    const position = index === null ? null : this.screenPosition(index);
    if (!position) {
      this.ring.hidden = true;
      return;
    }
    this.ring.hidden = false;
    this.ring.style.transform = `translate(${position.localX}px, ${position.localY}px)`;
  }
}

/** A coloring for MapView from decoded points: mode "label" | "cluster" | "value:NAME" | "none". */
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
    if (values) {
      let low = Infinity;
      let high = -Infinity;
      for (let i = 0; i < values.length; i += 1) {
        const v = values[i];
        if (v < low) low = v;
        if (v > high) high = v;
      }
      return { mode: "value", values, valueName: name, range: [low, high] };
    }
  }
  return { mode: "none" };
}

/** The Pan / Box / Lasso switch and Reset view (partials/map_toolbar_modes.html) in `root`, driving `views`. */
export function bindModes(root, views) {
  const group = root.querySelector('[data-role="modes"]');
  for (const button of group.querySelectorAll("button[data-mode]")) {
    button.addEventListener("click", () => {
      for (const other of group.querySelectorAll("button[data-mode]")) other.setAttribute("aria-pressed", String(other === button));
      for (const view of views) view.setDragmode(button.dataset.mode);
    });
  }
  root.querySelector('[data-role="reset-view"]').addEventListener("click", () => {
    for (const view of views) view.resetView();
  });
}
