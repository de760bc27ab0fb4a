// The filter bar over the map: keep the points whose label, cluster, imported metadata value or
// per-point value passes every filter (a set of values, or a range), several at once. Points that do
// not pass are taken off the map (NaN coordinates, so indices, hover and colours stay as they are),
// out of the lasso selection (grid and CSV), and out of the clustering scores shown on the bar. Each
// value's count follows the other filters. The search box asks the server for points by class name
// or metadata text, rings them on the map, and can become a filter itself.

import { api, enc } from "../api.js";
import { $, clear, el } from "../dom.js";
import { count, fixed } from "../format.js";
import { map } from "./map.js";
import { runPath, state } from "./context.js";

const filters = new Map(); // column key → {kind: "set", codes: Set} | {kind: "range", low, high} | {kind: "points", mask, text}
let mask = null; // Uint8Array(n): 1 = passes every filter; null = no filter
let search = null; // {query, indices: Int32Array, total}
let filteredOnMap = false; // whether the map shows filtered coordinates (else the payload's own)

/** Every column the points can be filtered by: {key, name, kind: "set" | "range", codes|values, nameOf}. */
export function filterColumns(points) {
  if (!points) return [];
  const columns = [];
  if (points.label) {
    const names = points.class_names || [];
    columns.push({ key: "label", name: "label", kind: "set", codes: points.label, nameOf: (code) => (names[code] !== undefined ? String(names[code]) : String(code)) });
  }
  if (points.cluster) columns.push({ key: "cluster", name: "cluster", kind: "set", codes: points.cluster, nameOf: (code) => (code < 0 ? "noise" : `cluster ${code}`) });
  for (const [name, column] of Object.entries(points.categories || {})) {
    columns.push({ key: `category:${name}`, name, kind: "set", codes: column.codes, nameOf: (code) => column.names[code] ?? String(code) });
  }
  for (const [name, values] of Object.entries(points.values || {})) columns.push({ key: `value:${name}`, name, kind: "range", values });
  return columns;
}

function columnOf(key) {
  return filterColumns(state.points).find((column) => column.key === key) || null;
}

/** Uint8Array(n) of the points one filter keeps. */
function passes(key, filter, n) {
  const keep = new Uint8Array(n);
  if (filter.kind === "points") {
    keep.set(filter.mask);
    return keep;
  }
  const column = columnOf(key);
  if (!column) return keep.fill(1);
  if (filter.kind === "set") {
    for (let i = 0; i < n; i += 1) keep[i] = filter.codes.has(column.codes[i]) ? 1 : 0;
  } else {
    const low = Number.isFinite(filter.low) ? filter.low : -Infinity;
    const high = Number.isFinite(filter.high) ? filter.high : Infinity;
    for (let i = 0; i < n; i += 1) keep[i] = column.values[i] >= low && column.values[i] <= high ? 1 : 0;
  }
  return keep;
}

/** The combined mask, and per filter the mask of every other filter (for that filter's counts). */
function computeMasks(n) {
  const each = new Map([...filters].map(([key, filter]) => [key, passes(key, filter, n)]));
  const all = (skip) => {
    const keep = new Uint8Array(n).fill(1);
    for (const [key, one] of each) if (key !== skip) for (let i = 0; i < n; i += 1) keep[i] &= one[i];
    return keep;
  };
  return { combined: filters.size ? all(null) : null, others: (key) => all(key) };
}

/** Indices (Int32Array) of the points the filters keep; every point without a filter. */
export function keptIndices(indices) {
  if (!mask || !indices) return indices;
  return Int32Array.from(Array.prototype.filter.call(indices, (i) => mask[i] === 1));
}

async function apply() {
  const points = state.points;
  if (!points || !map.view) return;
  const masks = computeMasks(points.n);
  mask = masks.combined;
  renderChips(masks);
  if (mask) {
    const x = Float32Array.from(points.x);
    const y = Float32Array.from(points.y);
    for (let i = 0; i < points.n; i += 1) if (!mask[i]) x[i] = y[i] = NaN;
    await map.view.moveTo(x, y);
  } else if (filteredOnMap || map.view.points !== points) {
    await map.view.moveTo(points.x, points.y); // back to every point (a payload drawn as it is needs nothing)
  }
  filteredOnMap = Boolean(mask);
  if (map.selection && map.selection.indices) map.selection.set(keptIndices(map.selection.indices), points);
  renderSummary();
  const bar = $("#filter-bar");
  bar.dataset.shown = String(mask ? mask.reduce((sum, value) => sum + value, 0) : points.n);
  $("#filter-toggle").textContent = filters.size ? `Filter / find (${filters.size})` : "Filter / find";
  document.dispatchEvent(new CustomEvent("latentmap:filter"));
}

// ----- the bar ---------------------------------------------------------------------------------
function renderAddPicker() {
  const select = $("#filter-add");
  const columns = filterColumns(state.points).filter((column) => !filters.has(column.key));
  clear(select).append(el("option", { value: "", text: "Filter by…" }), ...columns.map((column) => el("option", { value: column.key, text: column.name })));
}

function renderChips(masks) {
  const box = clear($("#filter-chips"));
  for (const [key, filter] of filters) {
    const chip = el("div", { class: "filter-chip", dataset: { key } });
    const remove = el("button", { type: "button", class: "chip-remove", title: "Remove this filter", text: "×" });
    remove.addEventListener("click", () => {
      filters.delete(key);
      renderAddPicker();
      apply();
    });
    if (filter.kind === "points") chip.append(el("span", { class: "chip-name", text: filter.text }));
    else if (filter.kind === "set") chip.append(setEditor(key, filter, masks.others(key)));
    else chip.append(rangeEditor(key, filter));
    chip.append(remove);
    box.append(chip);
  }
}

function setEditor(key, filter, others) {
  const column = columnOf(key);
  const tally = new Map();
  const codes = column ? column.codes : [];
  for (let i = 0; i < codes.length; i += 1) if (others[i]) tally.set(codes[i], (tally.get(codes[i]) || 0) + 1);
  const everyCode = column ? [...new Set(codes)].sort((a, b) => (a < 0) - (b < 0) || a - b) : [];
  const chosen = [...filter.codes].map((code) => column.nameOf(code));
  const details = el("details", { class: "chip-values" },
    el("summary", { text: `${column ? column.name : key}: ${chosen.length ? chosen.slice(0, 3).join(", ") + (chosen.length > 3 ? ", …" : "") : "none"}` }));
  const list = el("div", { class: "chip-list" });
  for (const code of everyCode) {
    const box = el("input", { type: "checkbox", value: String(code) });
    box.checked = filter.codes.has(code);
    box.addEventListener("change", () => {
      if (box.checked) filter.codes.add(code);
      else filter.codes.delete(code);
      apply();
    });
    list.append(el("label", { class: "chip-value" }, box, ` ${column.nameOf(code)} `, el("span", { class: "muted", text: count(tally.get(code) || 0) })));
  }
  details.append(list);
  details.open = Boolean(filter.open);
  details.addEventListener("toggle", () => (filter.open = details.open));
  return details;
}

function rangeEditor(key, filter) {
  const column = columnOf(key);
  let low = Infinity;
  let high = -Infinity;
  for (const v of column ? column.values : []) {
    if (v < low) low = v;
    if (v > high) high = v;
  }
  const input = (bound, placeholder) => {
    const box = el("input", { type: "number", step: "any", class: "chip-bound", placeholder: fixed(placeholder, 3), dataset: { bound } });
    if (Number.isFinite(filter[bound])) box.value = String(filter[bound]);
    box.addEventListener("change", () => {
      filter[bound] = box.value === "" ? null : Number(box.value);
      apply();
    });
    return box;
  };
  return el("span", { class: "chip-range" }, el("span", { class: "chip-name", text: `${column ? column.name : key}` }), input("low", low), " – ", input("high", high));
}

function renderSummary() {
  const points = state.points;
  const shown = mask ? mask.reduce((sum, value) => sum + value, 0) : points.n;
  $("#filter-count").textContent = mask ? `${count(shown)} of ${count(points.n)} points` : `${count(points.n)} points`;
  const scores = $("#filter-scores");
  scores.textContent = "";
  if (mask && points.label && points.cluster && shown > 1) {
    const kept = keptIndices(Int32Array.from({ length: points.n }, (_, i) => i));
    const { ari, nmi } = agreement(points.label, points.cluster, kept);
    scores.textContent = `clustering vs labels on these: ARI ${fixed(ari, 3)} · NMI ${fixed(nmi, 3)}`;
  }
}

/** ARI and NMI (arithmetic normalisation, as scikit-learn's default) of two labelings over `indices`. */
export function agreement(a, b, indices) {
  const table = new Map();
  const rows = new Map();
  const cols = new Map();
  for (const i of indices) {
    const key = `${a[i]}|${b[i]}`;
    table.set(key, (table.get(key) || 0) + 1);
    rows.set(a[i], (rows.get(a[i]) || 0) + 1);
    cols.set(b[i], (cols.get(b[i]) || 0) + 1);
  }
  const n = indices.length;
  const pairs = (m) => (m * (m - 1)) / 2;
  let sumCells = 0;
  for (const value of table.values()) sumCells += pairs(value);
  let sumRows = 0;
  for (const value of rows.values()) sumRows += pairs(value);
  let sumCols = 0;
  for (const value of cols.values()) sumCols += pairs(value);
  const expected = (sumRows * sumCols) / pairs(n);
  const maximum = (sumRows + sumCols) / 2;
  const ari = maximum === expected ? 1 : (sumCells - expected) / (maximum - expected);
  const entropy = (counts) => [...counts.values()].reduce((sum, value) => sum - (value / n) * Math.log(value / n), 0);
  let mutual = 0;
  for (const [key, value] of table) {
    const [row, col] = key.split("|");
    mutual += (value / n) * Math.log((value * n) / (rows.get(Number(row)) * cols.get(Number(col))));
  }
  const hA = entropy(rows);
  const hB = entropy(cols);
  const nmi = hA + hB === 0 ? 1 : (2 * mutual) / (hA + hB);
  return { ari, nmi };
}

// ----- search ----------------------------------------------------------------------------------
async function runSearch(query) {
  const status = $("#search-status");
  const toFilter = $("#search-filter");
  if (!query) {
    search = null;
    status.textContent = "";
    toFilter.hidden = true;
    if (map.view) await map.view.setHighlight(null);
    return;
  }
  status.textContent = "searching…";
  try {
    const found = await api.get(`${runPath}/search?q=${enc(query)}`);
    search = { query, indices: Int32Array.from(found.indices), total: found.total };
  } catch (error) {
    status.textContent = error.message;
    return;
  }
  const shown = keptIndices(search.indices);
  status.textContent = search.total ? `${count(search.total)} found${shown.length !== search.indices.length ? ` (${count(shown.length)} shown)` : ""}` : "nothing found";
  status.dataset.total = String(search.total);
  toFilter.hidden = !search.total;
  if (map.view) await map.view.setHighlight(shown.length ? shown : null);
}

function searchToFilter() {
  if (!search || !state.points) return;
  const keep = new Uint8Array(state.points.n);
  for (const i of search.indices) keep[i] = 1;
  filters.set(`search:${search.query}`, { kind: "points", mask: keep, text: `search “${search.query}”` });
  $("#point-search").value = "";
  runSearch("");
  apply();
}

/** Wire the bar; it fills in when points arrive and follows every new points payload. */
export function bindFilters() {
  const bar = $("#filter-bar");
  if (!bar) return;
  $("#filter-add").addEventListener("change", (event) => {
    const column = columnOf(event.target.value);
    if (!column) return;
    filters.set(column.key, column.kind === "set" ? { kind: "set", codes: new Set(column.codes), open: true } : { kind: "range", low: null, high: null });
    renderAddPicker();
    apply();
  });
  let typing = 0;
  $("#point-search").addEventListener("input", (event) => {
    clearTimeout(typing);
    typing = setTimeout(() => runSearch(event.target.value.trim()), 300);
  });
  $("#point-search").addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      clearTimeout(typing);
      runSearch(event.target.value.trim());
    }
  });
  $("#search-filter").addEventListener("click", searchToFilter);
  $("#filter-toggle").addEventListener("click", () => {
    bar.hidden = !bar.hidden;
    $("#filter-toggle").setAttribute("aria-expanded", String(!bar.hidden));
    if (!bar.hidden) $("#point-search").focus();
  });
  document.addEventListener("latentmap:points", () => {
    // A new payload (another projection or clustering): drop filters on columns it no longer has.
    for (const key of [...filters.keys()]) if (!key.startsWith("search:") && !columnOf(key)) filters.delete(key);
    renderAddPicker();
    apply();
  });
}
