// Form fields built from the server's parameter specs (ParamSpec.describe(): name, type, default,
// help, minimum, maximum, choices, exclusive_minimum), checked in the browser with the same rules
// the server applies, so a wrong value is shown next to its field before anything is sent.

import { el } from "./dom.js";
import { humanName } from "./format.js";

/** Check one raw input value against its spec → {value} or {error}. Empty means "the default". */
export function checkValue(spec, raw) {
  if (spec.type === "bool") return { value: Boolean(raw) };
  const text = typeof raw === "string" ? raw.trim() : raw;
  if (text === "" || text === null || text === undefined) {
    if (spec.required) return { error: "required" };
    return { value: null };
  }
  if (spec.choices && spec.choices.length) {
    const match = spec.choices.find((choice) => String(choice) === String(text));
    if (match === undefined) return { error: `must be one of ${spec.choices.join(", ")}` };
    return { value: match };
  }
  if (spec.type === "str") return { value: String(text) };
  if (spec.type === "int" || spec.type === "float") {
    if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(String(text))) {
      return { error: spec.type === "int" ? "must be a whole number" : "must be a number" };
    }
    const number = Number(text);
    if (!Number.isFinite(number)) return { error: "must be a finite number" };
    if (spec.type === "int" && !Number.isInteger(number)) return { error: "must be a whole number" };
    if (spec.minimum !== null && spec.minimum !== undefined) {
      if (spec.exclusive_minimum ? number <= spec.minimum : number < spec.minimum) {
        return { error: `must be ${spec.exclusive_minimum ? ">" : "≥"} ${spec.minimum}` };
      }
    }
    if (spec.maximum !== null && spec.maximum !== undefined && number > spec.maximum) {
      return { error: `must be ≤ ${spec.maximum}` };
    }
    return { value: number };
  }
  return { value: text };
}

/** What the allowed range reads like, for the hint under a field: "0 – 2", "> 0", "≥ 1". */
function rangeText(spec) {
  const number = (value) => Number(value).toLocaleString("en-US", { maximumFractionDigits: 6 });
  const low = spec.minimum === null || spec.minimum === undefined ? spec.minimum : number(spec.minimum);
  const high = spec.maximum === null || spec.maximum === undefined ? spec.maximum : number(spec.maximum);
  const hasLow = low !== null && low !== undefined;
  const hasHigh = high !== null && high !== undefined;
  if (hasLow && hasHigh && !spec.exclusive_minimum) return `${low}–${high}`;
  const parts = [];
  if (hasLow) parts.push(`${spec.exclusive_minimum ? ">" : "≥"} ${low}`);
  if (hasHigh) parts.push(`≤ ${high}`);
  return parts.join(", ");
}

/**
 * A set of fields for `specs` inside `container`. Returns a controller:
 *   read() → {values, errors}: values only for fields that are set (empty = server default);
 *   showErrors({name: message}) / clearErrors(); setValues({name: value}); names.
 */
export function paramFields(container, specs, { idPrefix = "param", values = {}, onChange } = {}) {
  container.replaceChildren();
  const inputs = new Map();
  for (const spec of specs) {
    const id = `${idPrefix}-${spec.name}`;
    const hintId = `${id}-hint`;
    const errorId = `${id}-error`;
    let input;
    if (spec.type === "bool") {
      input = el("input", { type: "checkbox", id, name: spec.name });
      input.checked = Boolean(values[spec.name] ?? spec.default);
    } else if (spec.choices && spec.choices.length) {
      input = el("select", { id, name: spec.name });
      for (const choice of spec.choices) input.append(el("option", { value: String(choice), text: String(choice) }));
      input.value = String(values[spec.name] ?? spec.default ?? spec.choices[0]);
    } else {
      const numeric = spec.type === "int" || spec.type === "float";
      // type="text" + inputmode: a number input silently turns "abc" into "" and hides the mistake.
      input = el("input", {
        type: "text",
        id,
        name: spec.name,
        inputmode: numeric ? (spec.type === "int" ? "numeric" : "decimal") : undefined,
        autocomplete: "off",
        spellcheck: "false",
        placeholder: spec.placeholder ?? (spec.default === null || spec.default === undefined ? "auto" : String(spec.default)),
      });
      const initial = values[spec.name] ?? (spec.prefill === false ? null : spec.default);
      input.value = initial === null || initial === undefined ? "" : String(initial);
    }
    input.setAttribute("aria-describedby", `${hintId} ${errorId}`);
    const hintParts = [spec.help, spec.hideRange ? "" : rangeText(spec)].filter(Boolean);
    const field = el(
      "div",
      { class: `field${spec.type === "bool" ? " field-check" : ""}`, dataset: { field: spec.name } },
      spec.type === "bool"
        ? el("label", { for: id, class: "check-label" }, input, el("span", { text: spec.label || humanName(spec.name) }))
        : [el("label", { for: id, text: spec.label || humanName(spec.name), title: spec.name }), input],
      el("p", { class: "field-hint", id: hintId, text: hintParts.join(" · ") }),
      el("p", { class: "field-error", id: errorId, role: "alert" }),
    );
    const validate = () => {
      const result = checkValue(spec, spec.type === "bool" ? input.checked : input.value);
      setError(field, input, result.error);
      return result;
    };
    input.addEventListener(spec.type === "bool" || input.tagName === "SELECT" ? "change" : "blur", (event) => {
      if (onChange) onChange(spec.name);
      if (input.value === "" && !field.classList.contains("has-error")) return;
      // Leaving the field for a submit button: the submit checks everything anyway. Otherwise wait
      // a moment, so a message that pushes the button down cannot make the click miss it.
      if (event.relatedTarget && event.relatedTarget.type === "submit") return;
      setTimeout(validate, 150);
    });
    input.addEventListener("input", () => {
      if (field.classList.contains("has-error")) validate();
    });
    inputs.set(spec.name, { spec, input, field });
    container.append(field);
  }
  return {
    names: specs.map((spec) => spec.name),
    read() {
      const result = { values: {}, errors: {} };
      for (const [name, { spec, input, field }] of inputs) {
        const checked = checkValue(spec, spec.type === "bool" ? input.checked : input.value);
        setError(field, input, checked.error);
        if (checked.error) result.errors[name] = checked.error;
        else if (checked.value !== null) result.values[name] = checked.value;
      }
      return result;
    },
    showErrors(errors) {
      for (const [name, message] of Object.entries(errors)) {
        const entry = inputs.get(name);
        if (entry) setError(entry.field, entry.input, message);
      }
    },
    clearErrors() {
      for (const { field, input } of inputs.values()) setError(field, input, null);
    },
    setValues(newValues) {
      for (const [name, value] of Object.entries(newValues)) {
        const entry = inputs.get(name);
        if (!entry) continue;
        if (entry.spec.type === "bool") entry.input.checked = Boolean(value);
        else entry.input.value = value === null || value === undefined ? "" : String(value);
      }
    },
    focusFirstError() {
      for (const { field, input } of inputs.values()) {
        if (field.classList.contains("has-error")) {
          input.focus();
          return true;
        }
      }
      return false;
    },
  };
}

export function setError(field, input, message) {
  const box = field.querySelector(".field-error");
  field.classList.toggle("has-error", Boolean(message));
  if (input) input.setAttribute("aria-invalid", message ? "true" : "false");
  if (box) box.textContent = message || "";
}
