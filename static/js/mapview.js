// One embedding map: Plotly scattergl (WebGL) over typed arrays (traces built by map-traces.js),
// overlay traces for highlighted, marked and focused points, and events translated back to dataset
// indices. No per-point DOM, no per-point objects.

import { extentOf, mapTraces } from "./map-traces.js";
import { plotlyReady } from "./plotly-loader.js";

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
    const { traces, index, baseTraces } = mapTraces(this.points, this.coloring, { highlighted: this.highlighted, marked: this.marked, focused: this.focused });
    this.baseTraces = baseTraces;
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
