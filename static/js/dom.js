// Tiny DOM helpers. Text always goes in through textContent, never innerHTML, so labels and
// file names from datasets are shown as text and cannot inject markup.

/** Create an element: el("a", {class: "x", href: "/", text: "go", dataset: {i: 3}, on: {click: fn}}, child...) */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = String(value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "style") Object.assign(node.style, value);
    else if (key === "on") for (const [name, handler] of Object.entries(value)) node.addEventListener(name, handler);
    else if (key in node && typeof value !== "string") node[key] = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  append(node, children);
  return node;
}

export function append(node, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export const $ = (selector, root = document) => root.querySelector(selector);
export const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));

export function clear(node) {
  node.replaceChildren();
  return node;
}

/** Replace an element's options: [{value, text, disabled, selected, group}] (group → <optgroup>). */
export function setOptions(select, options) {
  const groups = new Map();
  const nodes = [];
  for (const option of options) {
    const node = el("option", { value: option.value, text: option.text, disabled: option.disabled || undefined });
    if (option.title) node.title = option.title;
    if (option.group) {
      if (!groups.has(option.group)) {
        const group = el("optgroup", { label: option.group });
        groups.set(option.group, group);
        nodes.push(group);
      }
      groups.get(option.group).append(node);
    } else {
      nodes.push(node);
    }
  }
  select.replaceChildren(...nodes);
}

/** A short message in the corner; kind is "info" | "error" | "success". */
export function toast(message, kind = "info", milliseconds = 5000) {
  const region = document.getElementById("toast-region");
  if (!region) return;
  const node = el("div", { class: `toast toast-${kind}`, text: message });
  region.append(node);
  setTimeout(() => node.classList.add("toast-leaving"), milliseconds - 300);
  setTimeout(() => node.remove(), milliseconds);
}

/** Download `text` as a file named `name` (built in the browser: no request to the server). */
export function downloadText(name, text, type = "text/csv") {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const link = el("a", { href: url, download: name });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
