// The point panel: the clicked image, its facts, its nearest neighbours in the embedding and, for
// contrastive runs, its positive pairs. Opens from a click on the map, a neighbour or a selection tile.

import { api, enc } from "../api.js";
import { AugmentationPanel } from "../augmentations.js";
import { $, clear, el } from "../dom.js";
import { fixed, humanName, sig } from "../format.js";
import { runPath, state, writeView } from "./context.js";
import { map } from "./map.js";
import { switchTab } from "./tabs.js";

const augmentationPanel = new AugmentationPanel($("#point-augmentations"), runPath);
let neighborsRequest = null;

export async function selectPoint(index, { fromUrl = false } = {}) {
  if (!state.points || index < 0 || index >= state.points.n) return;
  state.view.point = index;
  writeView();
  switchTab("point");
  const points = state.points;
  const names = points.class_names || [];
  $("#point-empty").hidden = true;
  const detail = $("#point-detail");
  detail.hidden = false;
  detail.dataset.index = String(index);
  const image = $("#point-image");
  const small = state.dataset && state.dataset.image_shape && Math.max(state.dataset.image_shape[1], state.dataset.image_shape[2]) < 64;
  image.classList.toggle("pixelated", Boolean(small));
  image.hidden = Boolean(state.dataset && state.dataset.missing);
  if (!image.hidden) image.src = `/api/datasets/${enc(state.run.dataset)}/images/${index}?size=256`;
  image.alt = `Image ${index}${points.label ? `, label ${names[points.label[index]] ?? points.label[index]}` : ""}`;
  const facts = clear($("#point-facts"));
  const addFact = (term, value) => facts.append(el("div", {}, el("dt", { text: term }), el("dd", { text: value })));
  addFact("index", String(index));
  if (points.label) addFact("label", names[points.label[index]] ?? String(points.label[index]));
  if (points.cluster) addFact("cluster", points.cluster[index] < 0 ? "noise" : String(points.cluster[index]));
  for (const [name, values] of Object.entries(points.values)) addFact(humanName(name), fixed(values[index], 2));
  addFact("position", `${fixed(points.x[index], 2)}, ${fixed(points.y[index], 2)}`);
  map.view.setFocus(index);
  augmentationPanel.show(index); // contrastive runs: the point's positive pairs (augmentations.js)
  await loadNeighbors(index);
  if (fromUrl) state.atlas.load(state.atlas.pageOf(index)).catch(() => {});
}

async function loadNeighbors(index) {
  const box = clear($("#point-neighbors"));
  box.dataset.state = "loading";
  box.append(el("p", { class: "muted small", text: "Finding neighbours…" }));
  if (neighborsRequest) neighborsRequest.abort();
  const controller = new AbortController();
  neighborsRequest = controller;
  const query = new URLSearchParams({ k: "12" });
  if (state.view.clustering) query.set("clustering", state.view.clustering);
  let result;
  try {
    result = await api.get(`${runPath}/neighbors/${index}?${query}`, { signal: controller.signal });
  } catch (error) {
    if (error.name === "AbortError") return;
    clear(box).append(el("p", { class: "error-text small", text: error.message }));
    box.dataset.state = "error";
    return;
  }
  const names = state.points.class_names || [];
  clear(box);
  for (const neighbor of result.neighbors) {
    const label = neighbor.label !== null && neighbor.label !== undefined ? names[neighbor.label] ?? String(neighbor.label) : null;
    const tile = el("span", { class: "tile", "aria-hidden": "true" });
    state.atlas.paint(tile, neighbor.index, 64);
    box.append(
      el(
        "button",
        {
          type: "button",
          class: "neighbor",
          dataset: { index: neighbor.index },
          title: `#${neighbor.index}${label !== null ? ` · label ${label}` : ""}${neighbor.cluster !== null && neighbor.cluster !== undefined ? ` · cluster ${neighbor.cluster}` : ""} · distance ${sig(neighbor.distance)}`,
          on: { click: () => selectPoint(neighbor.index) },
        },
        tile,
        el("span", { class: "neighbor-caption", text: label !== null ? label : `#${neighbor.index}` }),
        el("span", { class: "neighbor-distance", text: sig(neighbor.distance, 2) }),
      ),
    );
  }
  box.dataset.state = "ready";
  document.dispatchEvent(new CustomEvent("latentmap:neighbors", { detail: { index, neighbors: result.neighbors.map((item) => item.index) } }));
}

export function closePoint() {
  state.view.point = null;
  writeView();
  $("#point-detail").hidden = true;
  $("#point-empty").hidden = false;
  map.view.setFocus(null);
  document.dispatchEvent(new CustomEvent("latentmap:neighbors", { detail: { index: null, neighbors: [] } }));
}
