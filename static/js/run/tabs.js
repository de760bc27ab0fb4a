// The sidebar's tabs (Point, Selection, Run). Panels that draw charts ask to hear when their tab opens:
// Plotly sizes a chart from its container, so a chart is drawn only once its panel is visible.

const openers = new Map(); // tab name → callback

export function onTabOpen(name, callback) {
  openers.set(name, callback);
}

export function switchTab(name) {
  for (const tab of document.querySelectorAll('.sidebar [role="tab"]')) {
    const selected = tab.id === `tab-${name}`;
    tab.setAttribute("aria-selected", String(selected));
    document.getElementById(tab.getAttribute("aria-controls")).hidden = !selected;
  }
  const opened = openers.get(name);
  if (opened) opened();
}

export function bindTabs() {
  for (const tab of document.querySelectorAll('.sidebar [role="tab"]')) tab.addEventListener("click", () => switchTab(tab.id.slice(4)));
}
