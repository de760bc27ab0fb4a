// Augmentation inspector, in the point panel of a contrastive run: the point's positive pairs as
// the run's own view transform makes them, each with the cosine similarity of its two embeddings
// under the trained encoder, beside the image's similarity to its nearest other image
// (GET /api/runs/{id}/points/{i}/augmentations). A run that makes no views (an autoencoder)
// answers 409 once; the panel then stays hidden for that run.

import { api } from "./api.js";
import { clear, el } from "./dom.js";
import { fixed } from "./format.js";

const PAIRS = 8;
const SIZE = 64;
const RETRIES = 60; // × RETRY_MS: two minutes, the server's own limit for one answer
const RETRY_MS = 2000;

export class AugmentationPanel {
  /** root: the point panel's container for the pairs; runPath: "/api/runs/{id}". */
  constructor(root, runPath) {
    this.root = root;
    this.runPath = runPath;
    this.available = true;
    this.request = null;
  }

  async show(index) {
    if (!this.available) return;
    if (this.request) this.request.abort();
    const controller = new AbortController();
    this.request = controller;
    this.root.hidden = false;
    this.root.dataset.state = "loading";
    this.root.dataset.index = String(index);
    clear(this.root).append(this.heading(), el("p", { class: "muted small", text: "Drawing views with the run's transform…" }));
    let answer;
    try {
      answer = await this.fetchWhenReady(index, controller.signal);
    } catch (error) {
      if (error.name === "AbortError") return;
      if (error.status === 409 && /augmented views/.test(error.message)) {
        this.available = false; // not a contrastive run: nothing to inspect, ever
        this.root.hidden = true;
        this.root.dataset.state = "absent";
        return;
      }
      clear(this.root).append(this.heading(), el("p", { class: "error-text small", text: error.message }));
      this.root.dataset.state = "error";
      return;
    }
    this.render(answer);
  }

  /** The answer, asking again while the server says 503 "try again" (the inspector's first answer
   *  starts its process and loads the encoder; the work goes on between the asks). */
  async fetchWhenReady(index, signal) {
    const path = `${this.runPath}/points/${index}/augmentations?pairs=${PAIRS}&size=${SIZE}`;
    for (let attempt = 1; ; attempt += 1) {
      try {
        return await api.get(path, { signal });
      } catch (error) {
        if (error.status !== 503 || attempt >= RETRIES) throw error;
        this.root.querySelector("p").textContent = "Starting the inspector (it loads the run's encoder)…";
        await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
        if (signal.aborted) throw new DOMException("aborted", "AbortError");
      }
    }
  }

  heading() {
    return el("h3", { class: "subhead" }, "Augmented pairs ", el("span", { class: "muted small", text: "the run's own transform" }));
  }

  render(answer) {
    const nearest = answer.nearest.similarity;
    const grid = el("div", { class: "augment-grid" });
    answer.pairs.forEach((pair, j) => {
      const closer = pair.similarity > nearest;
      grid.append(
        el(
          "figure",
          {
            class: `augment-pair${closer ? "" : " augment-apart"}`,
            title: `pair ${j + 1}: cosine similarity ${fixed(pair.similarity, 4)} (views to the image: ${pair.similarity_to_original.map((v) => fixed(v, 3)).join(", ")})`,
          },
          el("img", { src: pair.a, alt: `view a of pair ${j + 1}`, class: "pixelated" }),
          el("img", { src: pair.b, alt: `view b of pair ${j + 1}`, class: "pixelated" }),
          el("figcaption", { class: "augment-similarity", text: fixed(pair.similarity, 3) }),
        ),
      );
    });
    const apart = answer.pairs.filter((pair) => pair.similarity <= nearest).length;
    const summary = el(
      "p",
      { class: "muted small caption augment-summary" },
      `Cosine similarity of each pair's embeddings: mean ${fixed(answer.mean_pair_similarity, 3)}. `,
      `This image and its nearest other image (#${answer.nearest.index}): ${fixed(nearest, 3)}; the median over all images: ${fixed(answer.median_similarity, 3)}. `,
      apart ? `${apart} of ${answer.pairs.length} pairs are less alike than that neighbour (marked).` : "Every pair is more alike than the nearest other image.",
    );
    clear(this.root).append(this.heading(), summary, grid);
    this.root.dataset.state = "ready";
    this.root.dataset.pairs = String(answer.pairs.length);
  }
}
