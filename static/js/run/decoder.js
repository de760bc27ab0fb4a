// The Decoder tab (runs with a decoder: autoencoders, contrastive runs with a reconstruction weight): what the decoder draws at an empty spot of the map (its code
// estimated from the nearest points' codes) and the images between two points' codes.

import { errorMessage } from "../api.js";
import { $ } from "../dom.js";
import { fixed } from "../format.js";
import { runPath, state } from "./context.js";

const STEPS = 8;
const ends = { a: null, b: null };
let decodeTicket = 0;

export function hasDecoder(run) {
  return Boolean(run) && Boolean(run.has_decoder);
}

function showError(message) {
  const box = $("#decoder-error");
  box.hidden = !message;
  box.textContent = message || "";
}

/**
 * An image endpoint's PNG as an object URL, or an Error carrying the server's reason. While the
 * model process starts the server answers 503 with Retry-After: wait and ask again, a few times.
 */
async function fetchImage(url, retries = 4) {
  const response = await fetch(url);
  if (response.status === 503 && retries > 0) {
    const seconds = Math.min(10, Number(response.headers.get("Retry-After")) || 2);
    showError(`The decoder is starting; trying again in ${seconds} s…`);
    await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
    return fetchImage(url, retries - 1);
  }
  if (!response.ok) {
    let reason = `${response.status} ${response.statusText}`;
    try {
      const body = await response.json();
      if (body && body.detail) reason = errorMessage(body.detail);
    } catch (error) {
      // not JSON: keep the status line
    }
    throw new Error(reason);
  }
  return { url: URL.createObjectURL(await response.blob()), estimate: response.headers.get("X-Latentmap-Estimate") };
}

/** The decode endpoint's X-Latentmap-Estimate ("idw k=8 power=2") in words. */
function estimateText(estimate) {
  const match = /idw k=(\d+)(?: power=(\d+))?/.exec(estimate || "");
  if (!match) return "code estimated from the nearest points' codes (inverse-distance weighting on the map)";
  const weights = match[2] ? ` (weights 1/distance${match[2] === "2" ? "²" : `^${match[2]}`})` : "";
  return `code estimated by inverse-distance weighting of the ${match[1]} nearest points' codes on the map${weights}`;
}

function setImage(img, url) {
  if (img.src && img.src.startsWith("blob:")) URL.revokeObjectURL(img.src);
  img.src = url;
}

/** A click on an empty spot of the map: decode there, while the Decoder tab is open. */
export async function decodeAt(x, y) {
  if (!hasDecoder(state.run) || $("#panel-decoder").hidden || !state.view.projection) return;
  const ticket = ++decodeTicket;
  const query = new URLSearchParams({ projection: state.view.projection, x: String(x), y: String(y), size: "128" });
  try {
    const image = await fetchImage(`${runPath}/decode?${query}`);
    if (ticket !== decodeTicket) return;
    showError(null);
    const img = $("#decoded-image");
    setImage(img, image.url);
    img.alt = `Decoded at ${fixed(x, 2)}, ${fixed(y, 2)}`;
    $("#decoded-caption").textContent = `at (${fixed(x, 2)}, ${fixed(y, 2)}) · ${estimateText(image.estimate)}`;
    $("#decoded").hidden = false;
    $("#decoded").dataset.x = String(x);
    $("#decoded").dataset.y = String(y);
  } catch (error) {
    if (ticket === decodeTicket) showError(error.message);
  }
}

function setEnds(changes) {
  Object.assign(ends, changes);
  for (const which of ["a", "b"]) $(`#interp-${which}`).textContent = `${which.toUpperCase()}: ${ends[which] === null ? "—" : `#${ends[which]}`}`;
  if (ends.a !== null && ends.b !== null) interpolate();
}

async function interpolate() {
  const query = new URLSearchParams({ a: String(ends.a), b: String(ends.b), steps: String(STEPS) });
  try {
    const image = await fetchImage(`${runPath}/interpolate?${query}`);
    showError(null);
    const strip = $("#interp-strip");
    setImage(strip, image.url);
    strip.alt = `${STEPS} images decoded between #${ends.a} and #${ends.b}`;
    strip.hidden = false;
    strip.dataset.pair = `${ends.a},${ends.b}`;
  } catch (error) {
    showError(error.message);
  }
}

/** A selection of exactly two points is the pair to interpolate between. */
function onSelection(event) {
  const indices = event.detail.indices;
  if (!hasDecoder(state.run) || !indices || indices.length !== 2) return;
  setEnds({ a: indices[0], b: indices[1] }); // ready in the Decoder tab; the Selection tab stays open
}

export function bindDecoder() {
  const useSelected = (which) => () => {
    if (state.view.point === null) showError("Click a point on the map first: it becomes " + which.toUpperCase() + ".");
    else setEnds({ [which]: state.view.point });
  };
  $("#interp-set-a").addEventListener("click", useSelected("a"));
  $("#interp-set-b").addEventListener("click", useSelected("b"));
  document.addEventListener("latentmap:selection", onSelection);
  document.addEventListener("latentmap:run", () => {
    $("#tab-decoder").hidden = !(hasDecoder(state.run) && state.run.status === "succeeded");
  });
}
