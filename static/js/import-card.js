// Home page: the "Import embeddings" card. A file (npy, CSV/TSV, Parquet, or a zipped TensorBoard
// projector folder) and its options go to POST /api/imports; a refusal is shown on the form, in the
// server's words; an accepted import opens its run page, which follows the import job to the map.

import { api, fieldErrors } from "./api.js";
import { $, setOptions } from "./dom.js";
import { setError } from "./params.js";

const ACCEPTED = /\.(npy|csv|tsv|txt|parquet|pq|zip)$/i;
const OPTION_FIELDS = ["name", "labels_column", "image_column", "dataset", "format"];

/** Wire the card; `datasets` are GET /api/datasets rows (for "images from a dataset"). */
export function bindImportCard(datasets) {
  const form = $("#import-form");
  if (!form) return;
  populateDatasets(datasets);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submitImport(form);
  });
  form.setAttribute("data-ready", "1");
}

export function populateDatasets(datasets) {
  const select = $("#import-dataset");
  if (!select) return;
  const usable = (datasets || []).filter((dataset) => dataset.available && dataset.n && !dataset.name.startsWith("import-"));
  setOptions(select, [{ value: "", text: "none (or the file's own images)" },
    ...usable.map((dataset) => ({ value: dataset.name, text: `${dataset.name} (${dataset.n.toLocaleString()} images)` }))]);
}

function field(form, name) {
  return form.querySelector(`[data-field="import_${name}"]`);
}

function formError(message) {
  const box = $("#import-form-error");
  box.hidden = !message;
  box.textContent = message || "";
}

async function submitImport(form) {
  formError(null);
  const fileInput = $("#import-file");
  const file = fileInput.files[0];
  for (const name of ["file", ...OPTION_FIELDS]) {
    const box = field(form, name);
    if (box) setError(box, box.querySelector("input, select"), null);
  }
  if (!file) return setError(field(form, "file"), fileInput, "choose a file");
  if (!ACCEPTED.test(file.name)) {
    return setError(field(form, "file"), fileInput, "a .npy, .csv, .tsv or .parquet file, or a .zip of a projector folder");
  }
  const options = {};
  for (const name of OPTION_FIELDS) {
    const input = form.elements[`import_${name}`];
    const value = input ? input.value.trim() : "";
    if (value && !(name === "format" && value === "auto")) options[name] = value;
  }
  const data = new FormData();
  data.append("file", file);
  data.append("options", JSON.stringify(options));
  const button = $("#import-submit");
  const progress = $("#import-progress");
  const bar = progress.querySelector(".progress-bar");
  progress.hidden = false;
  bar.style.width = "0%";
  button.disabled = true;
  button.textContent = "Uploading…";
  try {
    const created = await api.upload("/api/imports", data, (fraction) => {
      bar.style.width = `${(fraction * 100).toFixed(1)}%`;
      if (fraction >= 1) button.textContent = "Reading…";
    });
    window.location.assign(`/runs/${encodeURIComponent(created.run_id)}`);
  } catch (error) {
    const errors = fieldErrors(error, OPTION_FIELDS);
    for (const name of OPTION_FIELDS) {
      if (errors[name]) setError(field(form, name), form.elements[`import_${name}`], errors[name]);
    }
    // What is wrong with the file itself (a ragged row, NaN, too large) belongs next to the file.
    if (errors._form) setError(field(form, "file"), fileInput, errors._form);
    if (!Object.keys(errors).length) formError(error.message);
    progress.hidden = true;
    button.disabled = false;
    button.textContent = "Import";
  }
}

