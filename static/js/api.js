// The JSON API client: one place that turns HTTP failures into ApiError with a readable message.

export class ApiError extends Error {
  constructor(status, detail) {
    super(errorMessage(detail) || `request failed (HTTP ${status})`);
    this.status = status;
    this.detail = detail;
  }
}

async function request(method, path, body, { signal } = {}) {
  const init = { method, headers: { Accept: "application/json" }, signal };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, "the server cannot be reached; is `latentmap serve` still running?");
  }
  const text = await response.text();
  let payload = null;
  if (text) {
    try {
      payload = JSON.parse(text);
    } catch {
      payload = text;
    }
  }
  if (!response.ok) throw failure(response.status, payload);
  return payload;
}

function failure(status, payload) {
  if (status === 401) showLoginNeeded();
  return new ApiError(status, payload && payload.detail !== undefined ? payload.detail : payload);
}

/** A 401 means the server has a token this browser has not given: offer the login page, which
 *  brings the person back here, instead of leaving a bare error. */
export function showLoginNeeded() {
  const banner = document.getElementById("login-needed");
  if (!banner) return;
  const next = window.location.pathname + window.location.search;
  document.getElementById("login-needed-link").href = `/login?next=${encodeURIComponent(next)}`;
  banner.hidden = false;
}

export const api = {
  get: (path, options) => request("GET", path, undefined, options),
  post: (path, body, options) => request("POST", path, body ?? {}, options),
  delete: (path, options) => request("DELETE", path, undefined, options),
  /** multipart upload with progress (fetch cannot report upload progress; XMLHttpRequest can). */
  upload(path, formData, onProgress) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", path);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.upload.addEventListener("progress", (event) => {
        if (event.lengthComputable && onProgress) onProgress(event.loaded / event.total);
      });
      xhr.addEventListener("load", () => {
        let payload = null;
        try {
          payload = JSON.parse(xhr.responseText);
        } catch {
          payload = xhr.responseText;
        }
        if (xhr.status >= 200 && xhr.status < 300) resolve(payload);
        else reject(failure(xhr.status, payload));
      });
      xhr.addEventListener("error", () => reject(new ApiError(0, "the upload failed: the server cannot be reached")));
      xhr.send(formData);
    });
  },
};

/** One readable sentence from a FastAPI `detail` (a string, a list of validation errors or an object). */
export function errorMessage(detail) {
  if (detail === null || detail === undefined) return "";
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail
      .map((item) => {
        const field = fieldOf(item);
        return field ? `${field}: ${cleanMessage(item.msg)}` : cleanMessage(item.msg);
      })
      .join("; ");
  }
  if (typeof detail === "object") return detail.message || detail.msg || JSON.stringify(detail);
  return String(detail);
}

/** The form field a validation error item points at: the last named part of its `loc`. */
function fieldOf(item) {
  if (!item || !Array.isArray(item.loc)) return null;
  const parts = item.loc.filter((part) => typeof part === "string" && part !== "body" && part !== "query");
  return parts.length ? parts[parts.length - 1] : null;
}

function cleanMessage(message) {
  return String(message || "invalid value").replace(/^Value error, /, "");
}

/**
 * Map an API error to form fields: {field: message}, with "_form" for what names no known field.
 * Knows FastAPI's 422 list (loc → field) and our ParamError sentences, which start with the
 * parameter's name ("epochs must be a whole number >= 1, got 0").
 */
export function fieldErrors(error, knownFields) {
  const errors = {};
  const known = new Set(knownFields);
  const put = (field, message) => {
    if (field && known.has(field)) errors[field] = errors[field] ? `${errors[field]}; ${message}` : message;
    else errors._form = errors._form ? `${errors._form}; ${message}` : message;
  };
  const detail = error instanceof ApiError ? error.detail : error;
  if (Array.isArray(detail)) {
    for (const item of detail) put(fieldOf(item), cleanMessage(item.msg));
  } else if (typeof detail === "string") {
    const named = detail.match(/^([A-Za-z_][A-Za-z0-9_]*)\b/);
    const unknown = detail.match(/^unknown parameter ([A-Za-z0-9_]+)/);
    if (unknown) put(unknown[1], detail);
    else put(named && known.has(named[1]) ? named[1] : null, detail);
  } else if (detail && typeof detail === "object" && detail.field) {
    put(detail.field, detail.message || errorMessage(detail));
  } else {
    put(null, error instanceof Error ? error.message : errorMessage(detail));
  }
  return errors;
}

export const enc = encodeURIComponent;
