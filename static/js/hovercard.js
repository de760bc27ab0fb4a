// The card that follows the cursor over a map: the point's atlas tile and its facts.
// Updating it is a few style writes, so the image appears on the same frame as the hover event.

import { humanName } from "./format.js";

const TILE_SIZE = 112;
const SHORT_NAMES = { knn_agreement: "kNN agree" };

export class HoverCard {
  constructor(atlas) {
    this.atlas = atlas;
    this.card = document.getElementById("hover-card");
    this.tile = this.card.querySelector(".hover-tile");
    this.facts = Object.fromEntries([...this.card.querySelectorAll("[data-fact]")].map((node) => [node.dataset.fact, node]));
    this.rows = Object.fromEntries([...this.card.querySelectorAll("[data-row]")].map((node) => [node.dataset.row, node]));
    this.log = [];
    window.__latentmap = window.__latentmap || {};
    window.__latentmap.hoverLog = this.log;
  }

  /**
   * Show point `index` next to the cursor. facts: {label, cluster, valueName, value}.
   * `event` is the mouse event Plotly reports (its timeStamp gives the hover latency we log).
   */
  show(index, facts, event) {
    this.atlas.paint(this.tile, index, TILE_SIZE);
    this.facts.index.textContent = String(index);
    this.setRow("label", facts.label);
    this.setRow("cluster", facts.cluster);
    if (facts.valueName) {
      this.facts["value-name"].textContent = SHORT_NAMES[facts.valueName] || humanName(facts.valueName);
      this.setRow("value", facts.value);
    } else {
      this.setRow("value", null);
    }
    this.card.hidden = false;
    this.card.dataset.index = String(index);
    if (event && typeof event.clientX === "number") this.place(event.clientX, event.clientY);
    if (event && event.timeStamp) {
      // From the mouse event to the card updated, and to the next frame (the image on screen).
      const entry = { index, latency: performance.now() - event.timeStamp, painted: null, loaded: this.tile.dataset.loaded === "1" };
      requestAnimationFrame(() => {
        entry.painted = performance.now() - event.timeStamp;
      });
      this.log.push(entry);
      if (this.log.length > 500) this.log.shift();
    }
  }

  setRow(name, value) {
    const row = this.rows[name];
    if (!row) return;
    row.hidden = value === null || value === undefined || value === "";
    if (!row.hidden) this.facts[name].textContent = String(value);
  }

  place(clientX, clientY) {
    const width = this.card.offsetWidth || 150;
    const height = this.card.offsetHeight || 180;
    const gap = 16;
    let left = clientX + gap;
    let top = clientY + gap;
    if (left + width > window.innerWidth - 4) left = clientX - gap - width;
    if (top + height > window.innerHeight - 4) top = clientY - gap - height;
    this.card.style.transform = `translate(${Math.max(4, left)}px, ${Math.max(4, top)}px)`;
  }

  hide() {
    this.card.hidden = true;
  }
}
