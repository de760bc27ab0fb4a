// Plotly (the 1.4 MB partial bundle of static/vendor: scatter, scattergl, heatmap) is the largest
// script; pages start their data requests first and only then wait for it (the <link rel=preload>
// in the page head has been downloading it since the first byte).

let loading = null;

export function plotlyReady() {
  if (window.Plotly) return Promise.resolve(window.Plotly);
  if (!loading) {
    loading = new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = document.body.dataset.plotlyUrl;
      script.async = true;
      script.addEventListener("load", () => resolve(window.Plotly));
      script.addEventListener("error", () => reject(new Error("the Plotly script could not be loaded")));
      document.head.append(script);
    });
  }
  return loading;
}
