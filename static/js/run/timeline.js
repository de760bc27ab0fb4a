// The timeline card under the map: the embedding saved at evenly spaced epochs, projected into one
// aligned sequence by a timeline job, played back with a slider and a play button. Points keep the
// main map's colours; between two saved epochs they move along straight lines.

import { api } from "../api.js";
import { float32 } from "../decode.js";
import { $ } from "../dom.js";
import { percent } from "../format.js";
import { ACTIVE } from "../jobs.js";
import { extentOf } from "../map-traces.js";
import { MapView } from "../mapview.js";
import { runPath, state } from "./context.js";
import { viewColoring } from "./map.js";

const STEPS_PER_FRAME = 20; // slider positions between two saved epochs
const SECONDS_PER_FRAME = 1.2;
const POLL_MS = 1500;

const timeline = { frames: null, view: null, position: 0, playing: false, drawnPosition: -1, drawing: false };
window.__latentmap = window.__latentmap || {};
window.__latentmap.timeline = timeline;

function showError(message) {
  const box = $("#timeline-error");
  box.hidden = !message;
  box.textContent = message || "";
}

/** Show the card for a finished trained run and load its timeline, if one was asked for. */
export async function showTimeline() {
  if (!state.run || state.run.status !== "succeeded") return;
  $("#timeline-card").hidden = false;
  await refresh();
}

async function refresh() {
  let answer;
  try {
    answer = await api.get(`${runPath}/timeline`);
  } catch (error) {
    if (error.status === 404) {
      $("#timeline-status").textContent = "";
      $("#timeline-compute").disabled = false;
      return;
    }
    showError(error.message);
    return;
  }
  $("#timeline-method").value = answer.method;
  if (ACTIVE.has(answer.status)) {
    $("#timeline-compute").disabled = true;
    $("#timeline-status").textContent = `Computing the ${answer.method === "umap" ? "UMAP" : "t-SNE"} timeline (${answer.status})…`;
    setTimeout(refresh, POLL_MS);
    return;
  }
  $("#timeline-compute").disabled = false;
  if (answer.status !== "succeeded") {
    $("#timeline-status").textContent = "";
    showError(`The timeline ${answer.status}${answer.error ? `: ${answer.error}` : ""}. Compute it again.`);
    return;
  }
  $("#timeline-status").textContent = `${answer.frames.length} epochs, ${answer.method === "umap" ? "UMAP" : "t-SNE"}.`;
  await showFrames(answer.frames);
}

async function compute() {
  showError(null);
  $("#timeline-compute").disabled = true;
  try {
    await api.post(`${runPath}/timeline`, { method: $("#timeline-method").value });
  } catch (error) {
    $("#timeline-compute").disabled = false;
    showError(error.message);
    return;
  }
  await refresh();
}

/** The axes that hold every frame, so the view stays put while the points move. */
function extentOfFrames(frames) {
  const all = (key) => {
    const out = new Float32Array(frames.reduce((total, frame) => total + frame[key].length, 0));
    let at = 0;
    for (const frame of frames) {
      out.set(frame[key], at);
      at += frame[key].length;
    }
    return out;
  };
  return extentOf(all("x"), all("y"));
}

async function showFrames(rawFrames) {
  const n = state.points ? state.points.n : undefined;
  timeline.frames = rawFrames.map((frame) => ({ epoch: frame.epoch, knn: frame.knn_accuracy, x: float32(frame.x, n), y: float32(frame.y, n) }));
  const slider = $("#timeline-slider");
  slider.max = String((timeline.frames.length - 1) * STEPS_PER_FRAME);
  slider.value = slider.max;
  timeline.position = Number(slider.max);
  $("#timeline-body").hidden = false;
  if (!timeline.view) timeline.view = new MapView($("#timeline-map"), {});
  const last = timeline.frames[timeline.frames.length - 1];
  const points = { ...state.points, x: last.x, y: last.y };
  await timeline.view.draw(points, viewColoring(state.points), "timeline", { extent: extentOfFrames(timeline.frames) });
  timeline.drawnPosition = timeline.position;
  renderEpoch();
}

/** The coordinates at slider position p: frame p / STEPS, moved linearly towards the next one. */
function coordinatesAt(position) {
  const frames = timeline.frames;
  const i = Math.min(Math.floor(position / STEPS_PER_FRAME), frames.length - 1);
  const t = position / STEPS_PER_FRAME - i;
  if (t === 0 || i === frames.length - 1) return { x: frames[i].x, y: frames[i].y };
  const a = frames[i];
  const b = frames[i + 1];
  const x = new Float32Array(a.x.length);
  const y = new Float32Array(a.y.length);
  for (let k = 0; k < x.length; k += 1) {
    x[k] = a.x[k] + (b.x[k] - a.x[k]) * t;
    y[k] = a.y[k] + (b.y[k] - a.y[k]) * t;
  }
  return { x, y };
}

function renderEpoch() {
  const frames = timeline.frames;
  const i = Math.round(timeline.position / STEPS_PER_FRAME);
  const frame = frames[Math.min(i, frames.length - 1)];
  const exact = timeline.position % STEPS_PER_FRAME === 0;
  const knn = frame.knn === null || frame.knn === undefined ? "" : ` · kNN ${percent(frame.knn)}`;
  $("#timeline-epoch").textContent = `${exact ? "" : "≈ "}epoch ${frame.epoch} of ${frames[frames.length - 1].epoch}${knn}`;
  $("#timeline-card").dataset.epoch = String(frame.epoch);
}

/** Draw the slider's position; positions that arrive while a frame is drawn wait for the latest. */
async function drawPosition() {
  if (timeline.drawing) return;
  timeline.drawing = true;
  try {
    while (timeline.drawnPosition !== timeline.position) {
      const position = timeline.position;
      const { x, y } = coordinatesAt(position);
      await timeline.view.moveTo(x, y);
      timeline.drawnPosition = position;
    }
  } finally {
    timeline.drawing = false;
  }
}

function setPosition(position) {
  timeline.position = position;
  $("#timeline-slider").value = String(position);
  renderEpoch();
  drawPosition();
}

function play() {
  const button = $("#timeline-play");
  const end = Number($("#timeline-slider").max);
  if (timeline.playing) {
    timeline.playing = false;
    button.textContent = "Play";
    button.setAttribute("aria-pressed", "false");
    return;
  }
  timeline.playing = true;
  button.textContent = "Pause";
  button.setAttribute("aria-pressed", "true");
  const from = timeline.position >= end ? 0 : timeline.position;
  const started = performance.now();
  const step = (now) => {
    if (!timeline.playing) return;
    const position = Math.min(end, Math.round(from + ((now - started) / 1000 / SECONDS_PER_FRAME) * STEPS_PER_FRAME));
    if (position !== timeline.position) setPosition(position);
    if (position >= end) {
      timeline.playing = false;
      button.textContent = "Play";
      button.setAttribute("aria-pressed", "false");
      return;
    }
    requestAnimationFrame(step);
  };
  requestAnimationFrame(step);
}

export function bindTimeline() {
  document.addEventListener("latentmap:points", showTimeline, { once: true }); // it needs the map's colours
  $("#timeline-compute").addEventListener("click", compute);
  $("#timeline-play").addEventListener("click", play);
  $("#timeline-slider").addEventListener("input", (event) => {
    timeline.playing = false;
    setPosition(Number(event.target.value));
  });
  // The timeline keeps the main map's colours.
  document.addEventListener("latentmap:points", () => {
    if (timeline.view && timeline.view.points && state.points) timeline.view.recolor(viewColoring(state.points));
  });
}
