// Follow a background job (training, projection, clustering) through its server-sent events,
// falling back to polling GET /api/jobs/{id} when the event stream cannot be kept open.

import { api, enc } from "./api.js";

export const ACTIVE = new Set(["queued", "running"]);

/**
 * followJob(id, {onProgress(job), onEnd(job)}) → {close()}.
 * onProgress gets {id, status, progress, metrics}; onEnd gets the finished job exactly once.
 */
export function followJob(jobId, { onProgress = () => {}, onEnd = () => {} } = {}) {
  let closed = false;
  let ended = false;
  let source = null;
  let pollTimer = null;
  let failures = 0;

  const finish = (job) => {
    if (ended) return;
    ended = true;
    close();
    onEnd(job);
  };
  const handle = (job) => {
    if (closed || !job) return;
    if (ACTIVE.has(job.status)) onProgress(job);
    else finish(job);
  };
  const poll = async () => {
    if (closed) return;
    try {
      handle(await api.get(`/api/jobs/${enc(jobId)}`));
      failures = 0;
    } catch (error) {
      failures += 1;
      if (error.status === 404) {
        finish({ id: jobId, status: "failed", error: "this job no longer exists" });
        return;
      }
    }
    if (!closed) pollTimer = setTimeout(poll, Math.min(5000, 1000 * (1 + failures)));
  };
  const close = () => {
    closed = true;
    if (source) source.close();
    if (pollTimer) clearTimeout(pollTimer);
  };

  if (typeof EventSource === "function") {
    source = new EventSource(`/api/jobs/${enc(jobId)}/events`);
    source.addEventListener("progress", (event) => handle(parse(event.data)));
    source.addEventListener("end", (event) => finish(parse(event.data)));
    source.addEventListener("error", () => {
      // The browser reconnects by itself while the stream is CONNECTING; once CLOSED, poll instead.
      if (closed || ended) return;
      if (source.readyState === EventSource.CLOSED) {
        source = null;
        poll();
      }
    });
  } else {
    poll();
  }
  return { close };
}

function parse(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}
