// Insight overlays on the map: where a point's true neighbours (in the embedding) sit on the map,
// and the stability check of the clustering shown (map.js's legend then gives each cluster's stability).

import { api, enc } from "../api.js";
import { $, toast } from "../dom.js";
import { refreshRun, runPath, state, writeView } from "./context.js";
import { followJobChip } from "./analyses.js";
import { loadPoints, map } from "./map.js";

const STABILITY_REPEATS = 10;

/** Rings on the map around the clicked point's nearest neighbours in the embedding. */
function markNeighbors(event) {
  if (!map.view) return;
  const { index, neighbors } = event.detail;
  map.view.setMarked(index === null ? null : Int32Array.from(neighbors));
}

export function renderStabilityButton() {
  const button = $("#stability-button");
  const clustering = state.points && state.points.clustering;
  const running = clustering && state.stabilityJobs.has(clustering.id);
  button.hidden = !clustering || Boolean(clustering.stability) || running;
}

async function checkStability() {
  const clustering = state.points && state.points.clustering;
  if (!clustering) return;
  const button = $("#stability-button");
  button.disabled = true;
  try {
    const created = await api.post(`${runPath}/clusterings/${enc(clustering.id)}/stability`, { repeats: STABILITY_REPEATS });
    state.stabilityJobs.add(clustering.id);
    renderStabilityButton();
    followJobChip({ job_id: created.job_id, kind: "stability" }, {
      label: "stability",
      onEnd: async (job) => {
        state.stabilityJobs.delete(clustering.id);
        if (job.status !== "succeeded") {
          toast(`The stability check ${job.status}${job.error ? `: ${job.error}` : ""}`, "error", 8000);
          renderStabilityButton();
          return;
        }
        await refreshRun();
        if (state.view.clustering === clustering.id) {
          state.view.color = "value:stability";
          writeView();
          await loadPoints();
        }
        toast("Stability computed: the map is coloured by how often each point stays with its cluster", "success");
      },
    });
  } catch (error) {
    toast(error.message, "error", 8000);
  } finally {
    button.disabled = false;
  }
}

export function bindInsights() {
  state.stabilityJobs = new Set(); // clustering ids whose stability job runs
  document.addEventListener("latentmap:neighbors", markNeighbors);
  document.addEventListener("latentmap:points", renderStabilityButton);
  $("#stability-button").addEventListener("click", checkStability);
}
