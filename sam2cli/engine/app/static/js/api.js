// The server's API: JSON in and out; an error is {"error": "..."} with a 4xx status.

export class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function call(method, path, body) {
  const init = { method, headers: {}, credentials: "same-origin" };
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  let data = null;
  try { data = await res.json(); } catch (e) { data = null; }
  if (!res.ok) throw new ApiError(res.status, (data && data.error) || `${res.status} ${res.statusText}`);
  return data;
}

export const api = {
  info: () => call("GET", "/api/info"),
  frame: (f) => call("GET", `/api/frame/${f}`),
  imageUrl: (f) => `/api/frame/${f}/image`,
  prompt: (body) => call("POST", "/api/prompt", body),
  addObject: (body = {}) => call("POST", "/api/objects", body),
  updateObject: (id, body) => call("PATCH", `/api/objects/${id}`, body),
  deleteObject: (id) => call("DELETE", `/api/objects/${id}`, {}),  // a JSON body, as every change needs
  view: (frame) => call("POST", "/api/view", { frame }),
  everything: (frame) => call("POST", "/api/everything", { frame }),
  seeds: (keep, cls) => call("POST", "/api/seeds", cls ? { keep, class: cls } : { keep }),
  track: (backward) => call("POST", "/api/track", { backward }),
  cancel: () => call("POST", "/api/cancel", {}),
  exportKinds: (kinds) => call("POST", "/api/export", { kinds }),
};

// Server-sent events (tracking progress, tracked frames); the browser reconnects by itself.
export function listen(onEvent) {
  const es = new EventSource("/api/events");
  es.onmessage = (m) => { try { onEvent(JSON.parse(m.data)); } catch (e) { console.error(e); } };
  return es;
}
