// Home page: the runs table (live progress of training runs) and the train and upload forms.

import { api, ApiError, enc, fieldErrors } from "./api.js";
import { $, clear, el, setOptions, toast } from "./dom.js";
import { count, fixed, isoWhen, percent, when } from "./format.js";
import { ACTIVE, followJob } from "./jobs.js";
import { paramFields, setError } from "./params.js";
import { bindImportCard, populateDatasets } from "./import-card.js";

// The shared training fields; bounds mirror the server's RunCreate model. Empty = the method's
// default for the chosen dataset (the server picks it), so the fields start empty.
const COMMON_SPECS = [
  { name: "epochs", type: "int", default: null, minimum: 1, maximum: 10000, help: "passes over the data" },
  { name: "embedding_dim", type: "int", default: null, minimum: 1, maximum: 4096, help: "size of the code" },
  { name: "batch_size", type: "int", default: null, minimum: 2, maximum: 65536 },
  { name: "lr", type: "float", default: null, minimum: 0, exclusive_minimum: true, maximum: 10, help: "Adam step size" },
  { name: "seed", type: "int", default: null, minimum: 0, maximum: 2147483647, placeholder: "0", hideRange: true, help: "same seed, same numbers" },
];

const state = {
  datasets: [],
  methods: null,
  methodFields: null,
  commonFields: null,
  runs: [],
  defaultsFor: null, // the dataset whose training defaults state.methods holds
  followers: new Map(), // job id → follower
  live: new Map(), // run id → latest job progress
};

const trainForm = $("#train-form");
const datasetSelect = $("#train-dataset");
const methodSelect = $("#train-method");

// ----- runs table -----------------------------------------------------------------------------
async function loadRuns() {
  try {
    state.runs = await api.get("/api/runs");
  } catch (error) {
    renderRunsError(error);
    return;
  }
  renderRuns();
  followActiveRuns();
}

function renderRunsError(error) {
  const body = $("#runs-body");
  clear(body).append(el("tr", { class: "placeholder-row" }, el("td", { colspan: 8, class: "error-text", text: `Runs could not be loaded: ${error.message}` })));
}

function methodLabel(name) {
  const info = state.methods && state.methods.training[name];
  return info ? info.label : name;
}

function renderRuns() {
  const body = $("#runs-body");
  const runs = state.runs;
  $("#runs-empty").hidden = runs.length > 0;
  $("#runs-table").hidden = runs.length === 0;
  $("#runs-count").textContent = runs.length ? `${runs.length} run${runs.length === 1 ? "" : "s"}` : "";
  clear(body);
  for (const run of runs) body.append(runRow(run));
}

function runRow(run) {
  const metrics = run.metrics || {};
  const config = run.config || {};
  const href = `/runs/${enc(run.id)}`;
  const row = el(
    "tr",
    { dataset: { runId: run.id, status: run.status } },
    el("td", {}, el("a", { href, class: "run-link mono", text: run.id })),
    el("td", { class: "col-dataset", text: run.dataset, title: run.dataset }),
    el("td", {}, el("span", { text: methodLabel(run.method) }), el("span", { class: "muted small block", text: configSummary(config) })),
    el("td", { class: "col-status" }, statusCell(run)),
    el("td", { class: "num", text: metrics.knn_accuracy === undefined ? "—" : percent(metrics.knn_accuracy) }),
    el("td", { class: "num", text: metrics.linear_probe_accuracy === undefined ? "—" : percent(metrics.linear_probe_accuracy) }),
    el("td", {}, el("time", { datetime: isoWhen(run.created), text: when(run.created) })),
    el(
      "td",
      { class: "row-actions" },
      el("a", { class: "button small ghost", href, text: ACTIVE.has(run.status) ? "Watch" : run.status === "succeeded" ? "Open map" : "Open" }),
      el("button", {
        type: "button",
        class: "button small ghost danger",
        text: "Delete",
        title: ACTIVE.has(run.status) ? "Cancel the run first" : "Delete this run and its files",
        disabled: ACTIVE.has(run.status),
        on: { click: () => deleteRun(run) },
      }),
    ),
  );
  return row;
}

function configSummary(config) {
  const parts = [];
  if (config.epochs) parts.push(`${config.epochs} ep`);
  if (config.embedding_dim) parts.push(`d=${config.embedding_dim}`);
  if (config.lr) parts.push(`lr ${config.lr}`);
  return parts.join(" · ");
}

function statusCell(run) {
  const live = state.live.get(run.id);
  const status = live ? live.status : run.status;
  const wrap = el("div", { class: "status-cell" }, el("span", { class: `badge status-${status}`, text: status }));
  if (ACTIVE.has(status)) {
    const fraction = live ? live.progress || 0 : 0;
    const metrics = (live && live.metrics) || {};
    const bar = el("div", { class: "progress small", role: "progressbar", "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": Math.round(fraction * 100) }, el("div", { class: "progress-bar", style: { width: `${(fraction * 100).toFixed(1)}%` } }));
    const text = metrics.epoch !== undefined && metrics.epochs ? `epoch ${metrics.epoch}/${metrics.epochs}` : `${Math.round(fraction * 100)}%`;
    wrap.append(bar, el("span", { class: "muted small", text }));
  }
  return wrap;
}

function updateRunStatus(runId) {
  const row = document.querySelector(`tr[data-run-id="${CSS.escape(runId)}"]`);
  const run = state.runs.find((item) => item.id === runId);
  if (!row || !run) return;
  const cell = row.querySelector(".col-status");
  clear(cell).append(statusCell(run));
}

function followActiveRuns() {
  for (const run of state.runs) {
    if (!ACTIVE.has(run.status) || !run.job_id || state.followers.has(run.job_id)) continue;
    const follower = followJob(run.job_id, {
      onProgress: (job) => {
        state.live.set(run.id, job);
        updateRunStatus(run.id);
      },
      onEnd: (job) => {
        state.followers.delete(run.job_id);
        state.live.delete(run.id);
        if (job.status === "succeeded") toast(`Run ${run.id} finished training`, "success");
        else if (job.status === "failed") toast(`Run ${run.id} failed: ${job.error || "unknown error"}`, "error", 8000);
        loadRuns();
      },
    });
    state.followers.set(run.job_id, follower);
  }
}

async function deleteRun(run) {
  if (!window.confirm(`Delete run ${run.id} (${run.method} on ${run.dataset}) and all its files?`)) return;
  try {
    await api.delete(`/api/runs/${enc(run.id)}`);
    toast(`Deleted run ${run.id}`, "success");
  } catch (error) {
    toast(error.message, "error", 8000);
  }
  loadRuns();
}

// ----- train form -----------------------------------------------------------------------------
function datasetOptions(datasets, selected) {
  const options = datasets.map((dataset) => {
    const shape = dataset.image_shape ? ` · ${dataset.image_shape[1]}×${dataset.image_shape[2]}${dataset.image_shape[0] === 3 ? " colour" : ""}` : "";
    const size = dataset.n ? ` · ${count(dataset.n)} images` : "";
    return {
      value: dataset.name,
      text: `${dataset.name}${size}${shape}${dataset.available ? "" : " (not on this machine)"}`,
      disabled: !dataset.available,
      group: dataset.source === "uploaded" ? "Uploaded" : "Built in",
      title: dataset.description || "",
    };
  });
  setOptions(datasetSelect, options);
  const pick = options.find((option) => option.value === selected && !option.disabled) || options.find((option) => !option.disabled);
  if (pick) datasetSelect.value = pick.value;
  describeDataset();
}

function describeDataset() {
  const dataset = state.datasets.find((item) => item.name === datasetSelect.value);
  const hint = $("#train-dataset-hint");
  if (!dataset) {
    hint.textContent = "";
    return;
  }
  const labels = dataset.has_labels === false ? "unlabelled (no kNN or probe accuracy)" : dataset.has_labels ? "labelled" : "";
  hint.textContent = [dataset.description, labels].filter(Boolean).join(" · ");
}

function methodOptions(methods) {
  const entries = Object.entries(methods.training);
  setOptions(methodSelect, entries.map(([name, info]) => ({ value: name, text: info.label || name })));
  methodSelect.value = entries.length ? entries[0][0] : "";
  buildMethodFields();
}

function buildMethodFields() {
  const info = state.methods.training[methodSelect.value];
  const specs = info ? info.params : [];
  const fieldset = $("#method-params");
  fieldset.hidden = specs.length === 0;
  $("#method-params-legend").textContent = info ? `${info.label} settings` : "Method settings";
  state.methodFields = paramFields($("#method-params-fields"), specs, { idPrefix: "method" });
  showDefaults();
}

// The shared fields stay empty (= the method's default for the dataset); their placeholders and
// the hint show what that default is for the chosen dataset and method.
function showDefaults() {
  const info = state.methods && state.methods.training[methodSelect.value];
  const defaults = (info && info.defaults) || {};
  for (const spec of COMMON_SPECS) {
    const input = $(`#train-${spec.name}`);
    if (input && spec.name in defaults) input.placeholder = String(defaults[spec.name]);
  }
  const forWhat = state.defaultsFor ? `Defaults for ${state.defaultsFor}` : "Defaults for 28/32 px images";
  $("#train-method-hint").textContent = Object.keys(defaults).length
    ? `${forWhat}: ${Object.entries(defaults).map(([key, value]) => `${key} ${value}`).join(", ")}`
    : "";
}

async function loadDefaults() {
  const name = datasetSelect.value;
  if (!name || !state.methods) return;
  try {
    const methods = await api.get(`/api/methods?dataset=${enc(name)}`);
    if (datasetSelect.value !== name) return; // the choice changed while this was loading
    state.methods.training = methods.training;
    state.defaultsFor = name;
  } catch {
    state.defaultsFor = null; // keep the generic defaults; submitting still uses the dataset's own
  }
  showDefaults();
}

function formError(message) {
  const box = $("#train-form-error");
  box.hidden = !message;
  box.textContent = message || "";
}

async function submitTrain(event) {
  event.preventDefault();
  formError(null);
  const common = state.commonFields.read();
  const method = state.methodFields.read();
  const errors = { ...common.errors, ...method.errors };
  setError(trainForm.querySelector('[data-field="dataset"]'), datasetSelect, datasetSelect.value ? null : "choose a dataset");
  setError(trainForm.querySelector('[data-field="method"]'), methodSelect, methodSelect.value ? null : "choose a method");
  if (!datasetSelect.value) errors.dataset = "choose a dataset";
  if (!methodSelect.value) errors.method = "choose a method";
  if (Object.keys(errors).length) {
    formError(`Fix the ${Object.keys(errors).length === 1 ? "field" : "fields"} marked in red; nothing was submitted.`);
    state.commonFields.focusFirstError() || state.methodFields.focusFirstError();
    return;
  }
  const body = { dataset: datasetSelect.value, method: methodSelect.value, ...common.values, method_params: method.values };
  const button = $("#train-submit");
  button.disabled = true;
  button.textContent = "Starting…";
  try {
    const created = await api.post("/api/runs", body);
    window.location.assign(`/runs/${enc(created.run_id)}`);
  } catch (error) {
    button.disabled = false;
    button.textContent = "Train";
    showServerErrors(error);
  }
}

function showServerErrors(error) {
  const names = [...state.commonFields.names, ...state.methodFields.names, "dataset", "method"];
  const errors = fieldErrors(error, names);
  state.commonFields.showErrors(errors);
  state.methodFields.showErrors(errors);
  if (errors.dataset) setError(trainForm.querySelector('[data-field="dataset"]'), datasetSelect, errors.dataset);
  if (errors.method) setError(trainForm.querySelector('[data-field="method"]'), methodSelect, errors.method);
  const fieldCount = Object.keys(errors).filter((key) => key !== "_form").length;
  if (errors._form) formError(errors._form);
  else if (fieldCount) formError("The server refused the marked fields; nothing was started.");
  if (error instanceof ApiError && error.status === 0) formError(error.message);
  state.commonFields.focusFirstError() || state.methodFields.focusFirstError();
}

function resetTrainForm(event) {
  event.preventDefault();
  formError(null);
  state.commonFields = paramFields($("#common-params-fields"), COMMON_SPECS, { idPrefix: "train" });
  buildMethodFields();
}

// ----- upload form ----------------------------------------------------------------------------
const uploadForm = $("#upload-form");

function nameFromFile(file) {
  return file.name
    .replace(/\.zip$/i, "")
    .toLowerCase()
    .replace(/[^a-z0-9_-]+/g, "-")
    .replace(/^[-_]+/, "")
    .slice(0, 64);
}

function uploadError(message) {
  const box = $("#upload-form-error");
  box.hidden = !message;
  box.textContent = message || "";
}

async function submitUpload(event) {
  event.preventDefault();
  uploadError(null);
  const fileInput = $("#upload-file");
  const nameInput = $("#upload-name");
  const fileField = uploadForm.querySelector('[data-field="file"]');
  const nameField = uploadForm.querySelector('[data-field="name"]');
  const file = fileInput.files[0];
  let ok = true;
  if (!file) {
    setError(fileField, fileInput, "choose a .zip file");
    ok = false;
  } else if (!/\.zip$/i.test(file.name)) {
    setError(fileField, fileInput, "the file must be a .zip archive");
    ok = false;
  } else setError(fileField, fileInput, null);
  const name = nameInput.value.trim() || (file ? nameFromFile(file) : "");
  if (file && !/^[a-z0-9][a-z0-9_-]{0,63}$/.test(name)) {
    setError(nameField, nameInput, "1–64 lower-case letters, digits, - or _, starting with a letter or digit");
    ok = false;
  } else setError(nameField, nameInput, null);
  if (!ok) return;

  const data = new FormData();
  data.append("file", file);
  data.append("name", name);
  const progress = $("#upload-progress");
  const bar = progress.querySelector(".progress-bar");
  const button = $("#upload-submit");
  progress.hidden = false;
  bar.style.width = "0%";
  button.disabled = true;
  button.textContent = "Uploading…";
  try {
    const result = await api.upload("/api/datasets", data, (fraction) => {
      bar.style.width = `${(fraction * 100).toFixed(1)}%`;
      if (fraction >= 1) button.textContent = "Importing…";
    });
    showReport(result);
    uploadForm.reset();
    await loadDatasets(result.name);
    toast(`Dataset ${result.name} added`, "success");
  } catch (error) {
    const errors = fieldErrors(error, ["name", "file"]);
    if (errors.name) setError(nameField, nameInput, errors.name);
    if (errors.file) setError(fileField, fileInput, errors.file);
    // Name clashes (409) mention the name in the middle of the sentence: put them on the name field.
    if (error.status === 409) setError(nameField, nameInput, error.message);
    else if (errors._form) uploadError(errors._form);
  } finally {
    progress.hidden = true;
    button.disabled = false;
    button.textContent = "Upload";
  }
}

function showReport(result) {
  const report = result.report || {};
  const box = clear($("#upload-report"));
  box.hidden = false;
  const classes = report.classes || [];
  box.append(
    el("h3", { text: `Imported “${result.name}”` }),
    el(
      "ul",
      { class: "report-facts" },
      el("li", {}, el("strong", { text: count(report.images ?? result.n) }), " images found"),
      el("li", { text: classes.length ? `${classes.length} classes: ${classes.slice(0, 12).join(", ")}${classes.length > 12 ? ", …" : ""}` : "no class folders: unlabelled" }),
      el("li", {}, el("strong", { text: count((report.skipped || []).length) }), (report.skipped || []).length === 1 ? " file skipped" : " files skipped"),
    ),
  );
  const skipped = report.skipped || [];
  if (skipped.length) {
    const list = el("ul", { class: "skipped-list" });
    for (const item of skipped.slice(0, 100)) list.append(el("li", {}, el("code", { text: item.path }), el("span", { class: "muted", text: ` — ${item.reason}` })));
    if (skipped.length > 100) list.append(el("li", { class: "muted", text: `… and ${skipped.length - 100} more` }));
    box.append(el("details", { open: skipped.length <= 10 }, el("summary", { text: "Skipped files and why" }), list));
  }
}

// ----- start ----------------------------------------------------------------------------------
async function loadDatasets(selected) {
  state.datasets = await api.get("/api/datasets");
  datasetOptions(state.datasets, selected ?? datasetSelect.value);
  populateDatasets(state.datasets);
}

async function start() {
  state.commonFields = paramFields($("#common-params-fields"), COMMON_SPECS, { idPrefix: "train" });
  trainForm.addEventListener("submit", submitTrain);
  trainForm.addEventListener("reset", resetTrainForm);
  datasetSelect.addEventListener("change", () => {
    describeDataset();
    loadDefaults();
  });
  methodSelect.addEventListener("change", buildMethodFields);
  uploadForm.addEventListener("submit", submitUpload);
  $("#upload-file").addEventListener("change", () => {
    const file = $("#upload-file").files[0];
    if (file && !$("#upload-name").value) $("#upload-name").placeholder = nameFromFile(file) || "taken from the file name";
  });

  const [datasets, methods] = await Promise.allSettled([api.get("/api/datasets"), api.get("/api/methods")]);
  if (methods.status === "fulfilled") {
    state.methods = methods.value;
    methodOptions(state.methods);
  } else {
    formError(`Methods could not be loaded: ${methods.reason.message}`);
  }
  if (datasets.status === "fulfilled") {
    state.datasets = datasets.value;
    datasetOptions(state.datasets, new URLSearchParams(location.search).get("dataset") || "digits");
    bindImportCard(state.datasets);
    await loadDefaults();
  } else {
    formError(`Datasets could not be loaded: ${datasets.reason.message}`);
  }
  // (not trainForm.dataset: a form exposes its control named "dataset" under that property)
  trainForm.setAttribute("data-ready", "1");
  await loadRuns();
  // Runs started elsewhere (the CLI, another tab) appear without a reload.
  setInterval(() => {
    if (document.visibilityState === "visible") loadRuns();
  }, 15000);
}

start();
