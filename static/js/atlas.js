// The dataset's image atlas: sprite-sheet pages from GET /api/datasets/{name}/atlas, so hovering a
// point shows its image at once by moving a CSS background — not one request per hover.
// Image i sits on page i // per_page, column (i % per_page) % columns, row (i % per_page) // columns.

import { enc } from "./api.js";

export class Atlas {
  /** info: {name, n, atlas: {tile, columns, per_page, pages}} from GET /api/datasets/{name}. */
  constructor(info, { available = true } = {}) {
    this.available = available; // false: the dataset's images cannot be served; tiles stay blank
    this.name = info.name;
    this.n = info.n;
    const atlas = info.atlas || {};
    this.tile = atlas.tile || 32;
    this.columns = atlas.columns || 64;
    this.perPage = atlas.per_page || 4096;
    this.pages = atlas.pages || Math.ceil(this.n / this.perPage);
    this.images = new Map(); // page → HTMLImageElement (kept so the browser keeps it decoded)
    this.loading = new Map(); // page → Promise<HTMLImageElement>
    this.listeners = new Set();
  }

  url(page) {
    return `/api/datasets/${enc(this.name)}/atlas?page=${page}&size=${this.tile}`;
  }

  pageOf(index) {
    return Math.floor(index / this.perPage);
  }

  isLoaded(page) {
    const image = this.images.get(page);
    return Boolean(image && image.complete && image.naturalWidth > 0);
  }

  /** Load one page (once); resolves when it is decoded and ready to paint. */
  load(page) {
    if (this.loading.has(page)) return this.loading.get(page);
    const image = new Image();
    image.decoding = "async";
    const promise = new Promise((resolve, reject) => {
      image.addEventListener("load", async () => {
        try {
          await image.decode();
        } catch {
          /* decode() can fail for a detached image in some browsers; load already succeeded. */
        }
        this.images.set(page, image);
        for (const listener of this.listeners) listener(page);
        resolve(image);
      });
      image.addEventListener("error", () => {
        this.loading.delete(page);
        reject(new Error(`atlas page ${page} of ${this.name} could not be loaded`));
      });
    });
    image.src = this.url(page);
    this.loading.set(page, promise);
    return promise;
  }

  /** Load every page, `parallel` at a time, pages holding `first` indices first. */
  async preload({ parallel = 2, first = [] } = {}) {
    if (!this.available) return;
    const order = [...new Set([...first.map((index) => this.pageOf(index)), ...Array.from({ length: this.pages }, (_, p) => p)])];
    const queue = order.filter((page) => page >= 0 && page < this.pages);
    const worker = async () => {
      while (queue.length) {
        const page = queue.shift();
        try {
          await this.load(page);
        } catch {
          /* one missing page must not stop the others; hover shows a placeholder for it */
        }
      }
    };
    await Promise.all(Array.from({ length: parallel }, worker));
  }

  onLoad(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Paint image `index` into `element` at `size` CSS pixels via background-position.
   * Sets data-loaded="1" once the page's sprite sheet has been loaded, else "0" (and loads it).
   */
  paint(element, index, size) {
    if (!this.available) {
      element.style.width = `${size}px`;
      element.style.height = `${size}px`;
      element.style.backgroundImage = "none";
      element.dataset.index = String(index);
      element.dataset.loaded = "unavailable";
      return element;
    }
    const page = this.pageOf(index);
    const slot = index % this.perPage;
    const column = slot % this.columns;
    const row = Math.floor(slot / this.columns);
    const scale = size / this.tile;
    element.style.width = `${size}px`;
    element.style.height = `${size}px`;
    element.style.backgroundImage = `url("${this.url(page)}")`;
    // The sheet's own pixel size when known (a last page may be narrower or shorter), else full width.
    const sheet = this.images.get(page);
    element.style.backgroundSize = sheet && sheet.naturalWidth
      ? `${sheet.naturalWidth * scale}px ${sheet.naturalHeight * scale}px`
      : `${this.columns * this.tile * scale}px auto`;
    element.style.backgroundPosition = `${-column * size}px ${-row * size}px`;
    element.dataset.index = String(index);
    element.dataset.page = String(page);
    const loaded = this.isLoaded(page);
    element.dataset.loaded = loaded ? "1" : "0";
    if (!loaded) {
      this.load(page)
        .then(() => {
          if (element.dataset.index === String(index)) this.paint(element, index, size);
        })
        .catch(() => {
          if (element.dataset.index === String(index)) element.dataset.loaded = "error";
        });
    }
    return element;
  }
}
