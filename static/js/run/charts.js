// The small line charts of the run page (loss, timeline scores) share one look.

export function chartLayout({ xTitle, yTitle }) {
  return {
    margin: { l: 52, r: 12, t: 8, b: 36 },
    paper_bgcolor: "rgba(0,0,0,0)",
    plot_bgcolor: "#ffffff",
    xaxis: { title: { text: xTitle, font: { size: 11 } }, gridcolor: "#eef0f3", zeroline: false, rangemode: "tozero" },
    yaxis: { title: { text: yTitle, font: { size: 11 } }, gridcolor: "#eef0f3", zeroline: false },
    font: { family: "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", size: 11, color: "#374151" },
    showlegend: false,
  };
}
