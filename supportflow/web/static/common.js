// Shared by the agent console and the ops dashboard: API calls, SSE over fetch, helpers.
// The pages are signed in with an account: the session cookie goes with every same-origin
// request, and every change carries the page's CSRF token (X-CSRFToken).

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** An element: h("li", {class: "x", text: "hi"}, [children]). */
export function h(tag, attrs = {}, children = []) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "text") node.textContent = value;
    else if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) node.append(child);
  return node;
}

export function randomId(prefix) {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return prefix + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "—";
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${seconds < 10 ? seconds.toFixed(1) : Math.round(seconds)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(seconds / 3600)} h ${Math.round((seconds % 3600) / 60)} min`;
}

export function clock(epochSeconds) {
  return new Date(epochSeconds * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

/** The page's CSRF token (from <meta name="csrf-token">). */
export function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

/** The signed-in account's API calls: the session cookie, and the CSRF token on changes. */
export class Session {
  async api(method, path, body) {
    const headers = { Accept: "application/json" };
    if (method !== "GET") headers["X-CSRFToken"] = csrfToken();
    const options = { method, headers, credentials: "same-origin" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, options);
    } catch (error) {
      throw new ApiError(0, "network", "Can't reach the server — retrying");
    }
    const data = response.status === 204 ? {} : await response.json().catch(() => ({}));
    if (!response.ok) {
      const error = data.error || {};
      throw new ApiError(response.status, error.code || "http_error", error.message || `HTTP ${response.status}`);
    }
    return data;
  }
}

/** Back to the sign-in page (the session ended), coming back here afterwards. */
export function signInAgain() {
  window.location.assign(`/signin?next=${encodeURIComponent(window.location.pathname)}`);
}

/** What to tell a person about a failed call. */
export function explain(error, role) {
  if (error.status === 401) return "Your session ended. Sign in again.";
  if (error.status === 403) return `Refused: ${error.message || `this needs the ${role} role`}`;
  if (error.status === 0) return "Can't reach the server — retrying";
  return error.message;
}

/**
 * Server-sent events read with fetch (with the session cookie), resumable with Last-Event-ID,
 * which EventSource cannot set. Calls onEvent(name, data, id); returns a stop().
 * onState(true|false, error) reports whether the stream is up.
 */
export function streamEvents(url, headers, onEvent, onState) {
  let stopped = false;
  let lastId = "";
  let controller = null;
  let failures = 0;

  async function once() {
    controller = new AbortController();
    const sent = { ...headers, Accept: "text/event-stream" };
    if (lastId) sent["Last-Event-ID"] = lastId;
    const response = await fetch(url, { headers: sent, signal: controller.signal, cache: "no-store",
      credentials: "same-origin" });
    if (!response.ok || !response.body) {
      const data = await response.json().catch(() => ({}));
      throw new ApiError(response.status, (data.error || {}).code, (data.error || {}).message || `HTTP ${response.status}`);
    }
    failures = 0;
    onState(true);
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let frame = { event: "message", data: [], id: null };
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let newline;
      while ((newline = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, newline).replace(/\r$/, "");
        buffer = buffer.slice(newline + 1);
        if (line === "") {
          if (frame.id !== null) lastId = frame.id;
          if (frame.data.length) {
            try { onEvent(frame.event, JSON.parse(frame.data.join("\n")), frame.id); } catch { /* skip */ }
          }
          frame = { event: "message", data: [], id: null };
        } else if (!line.startsWith(":")) {
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
          if (field === "event") frame.event = text;
          else if (field === "data") frame.data.push(text);
          else if (field === "id") frame.id = text;
        }
      }
    }
  }

  (async () => {
    while (!stopped) {
      try {
        await once();  // ends when the server closes the stream: reconnect at once
      } catch (error) {
        if (stopped) return;
        failures += 1;
        onState(false, error);
        if (error.status === 401 || error.status === 403) return;
        await new Promise((resolve) => setTimeout(resolve, Math.min(1000 * 2 ** failures, 30000)));
      }
    }
  })();
  return () => { stopped = true; if (controller) controller.abort(); };
}
