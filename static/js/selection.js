// A set of selected points (box/lasso selection or a contingency cell) shown as image tiles, with
// counts per label and per cluster and a CSV download built in the browser.

import { clear, downloadText, el } from "./dom.js";
import { count, percent } from "./format.js";
import { categoryColor, NOISE_COLOR } from "./colors.js";

const PAGE = 240;
const TILE = 48;

export class SelectionPanel {
  /**
   * root: the element holding partials/selection_panel.html.
   * options: atlas, onPick(index), onClear(), fileName() → "run-selection.csv"
   */
  constructor(root, { atlas, onPick, onClear, fileName }) {
    this.root = root;
    this.atlas = atlas;
    this.onPick = onPick;
    this.onClear = onClear;
    this.fileName = fileName || (() => "selection.csv");
    this.part = (role) => root.querySelector(`[data-role="${role}"]`);
    this.indices = null;
    this.shown = 0;
    this.part("selection-csv").addEventListener("click", () => this.download());
    this.part("selection-clear").addEventListener("click", () => {
      this.set(null);
      if (this.onClear) this.onClear();
    });
    this.part("selection-more").addEventListener("click", () => this.showMore());
  }

  /**
   * Show `indices` (Int32Array, dataset order) of `points` (decoded /points payload; a second
   * payload `other` adds its cluster column, for the compare page). title overrides the heading.
   */
  set(indices, points, { title, other, otherColor } = {}) {
    this.indices = indices && indices.length ? indices : null;
    this.points = points;
    this.other = other || null;
    this.otherColor = otherColor || null;
    const panel = this.part("selection");
    const empty = this.root.querySelector('[data-role="selection-empty"]');
    panel.hidden = !this.indices;
    if (empty) empty.hidden = Boolean(this.indices);
    if (!this.indices) return;
    this.part("selection-title").textContent = title || `${count(this.indices.length)} point${this.indices.length === 1 ? "" : "s"} selected`;
    this.renderCounts();
    clear(this.part("selection-grid"));
    this.shown = 0;
    this.showMore();
  }

  renderCounts() {
    const points = this.points;
    const labelBox = clear(this.part("counts-label"));
    const clusterBox = clear(this.part("counts-cluster"));
    if (points.label) {
      const names = points.class_names || [];
      labelBox.append(countTable("Label", tally(points.label, this.indices), (code) => (names[code] !== undefined ? names[code] : String(code)), this.indices.length));
    }
    if (points.cluster) {
      clusterBox.append(countTable(this.other ? "Cluster (A)" : "Cluster", tally(points.cluster, this.indices), (code) => (code < 0 ? "noise" : String(code)), this.indices.length));
    }
    if (this.other && this.other.cluster) {
      clusterBox.append(countTable("Cluster (B)", tally(this.other.cluster, this.indices), (code) => (code < 0 ? "noise" : String(code)), this.indices.length, this.otherColor));
    }
  }

  showMore() {
    const grid = this.part("selection-grid");
    const end = Math.min(this.indices.length, this.shown + PAGE);
    const fragment = document.createDocumentFragment();
    const names = this.points.class_names || [];
    for (let j = this.shown; j < end; j += 1) {
      const index = this.indices[j];
      const label = this.points.label ? this.points.label[index] : null;
      const tile = el("button", {
        type: "button",
        class: "tile tile-button",
        title: `#${index}${label !== null ? ` · ${names[label] ?? label}` : ""}`,
        "aria-label": `Image ${index}`,
        on: { click: () => this.onPick && this.onPick(index) },
      });
      this.atlas.paint(tile, index, TILE);
      fragment.append(tile);
    }
    grid.append(fragment);
    this.shown = end;
    const more = this.part("selection-more");
    more.hidden = this.shown >= this.indices.length;
    more.textContent = `Show ${count(Math.min(PAGE, this.indices.length - this.shown))} more (${count(this.indices.length - this.shown)} hidden)`;
  }

  download() {
    if (!this.indices) return;
    const points = this.points;
    const names = points.class_names || [];
    const valueNames = Object.keys(points.values || {});
    const header = ["index", "x", "y"];
    if (points.label) header.push("label", "label_name");
    if (points.cluster) header.push(this.other ? "cluster_a" : "cluster");
    if (this.other && this.other.cluster) header.push("cluster_b");
    header.push(...valueNames);
    const lines = [header.join(",")];
    for (const index of this.indices) {
      const row = [index, points.x[index], points.y[index]];
      if (points.label) row.push(points.label[index], csvText(names[points.label[index]] ?? ""));
      if (points.cluster) row.push(points.cluster[index]);
      if (this.other && this.other.cluster) row.push(this.other.cluster[index]);
      for (const name of valueNames) row.push(points.values[name][index]);
      lines.push(row.join(","));
    }
    downloadText(this.fileName(), `${lines.join("\n")}\n`);
  }
}

function tally(codes, indices) {
  const counts = new Map();
  for (const index of indices) counts.set(codes[index], (counts.get(codes[index]) || 0) + 1);
  return [...counts].sort((a, b) => b[1] - a[1]);
}

function countTable(title, rows, nameOf, total, colorOf = null) {
  const table = el("table", { class: "count-table" }, el("caption", { text: title }));
  const body = el("tbody");
  for (const [code, n] of rows.slice(0, 12)) {
    body.append(
      el(
        "tr",
        {},
        el("th", { scope: "row" }, el("span", { class: "swatch", style: { background: colorOf ? colorOf(code) : code < 0 ? NOISE_COLOR : categoryColor(code) } }), el("span", { text: nameOf(code) })),
        el("td", { class: "num", text: count(n) }),
        el("td", { class: "bar-cell" }, el("span", { class: "bar", style: { width: `${(100 * n) / total}%` } })),
        el("td", { class: "num muted", text: percent(n / total, 0) }),
      ),
    );
  }
  if (rows.length > 12) body.append(el("tr", {}, el("td", { colspan: 4, class: "muted small", text: `… ${rows.length - 12} more` })));
  table.append(body);
  return table;
}

/** A CSV field: quoted when it holds a comma, quote or line break (RFC 4180), never a formula. */
function csvText(value) {
  // A leading = + - @ would make a spreadsheet run the cell as a formula: neutralise it.
  const text = /^[=+\-@]/.test(String(value)) ? `'${value}` : String(value);
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}
