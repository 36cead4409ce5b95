// Shared by the agent console and the ops dashboard: tokens, API calls, SSE over fetch, helpers.

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

/** A bearer token kept in this tab's sessionStorage under `key`. */
export class Session {
  constructor(key) { this.key = key; }
  get token() { try { return sessionStorage.getItem(this.key); } catch { return null; } }
  set token(value) {
    try { value ? sessionStorage.setItem(this.key, value) : sessionStorage.removeItem(this.key); } catch { /* ignore */ }
  }

  async api(method, path, body) {
    const headers = { Accept: "application/json", Authorization: `Bearer ${this.token}` };
    const options = { method, headers };
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
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      const error = data.error || {};
      throw new ApiError(response.status, error.code || "http_error", error.message || `HTTP ${response.status}`);
    }
    return data;
  }
}

/** What to tell a person about a failed call. */
export function explain(error, role) {
  if (error.status === 401) return "Token refused: it is unknown or revoked. Sign in again.";
  if (error.status === 403) return `Token refused: it doesn't have the ${role} role.`;
  if (error.status === 0) return "Can't reach the server — retrying";
  return error.message;
}

/**
 * Server-sent events read with fetch, so the request can carry an Authorization header
 * (EventSource can't). Calls onEvent(name, data, id); resumes with Last-Event-ID; returns a stop().
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
    const response = await fetch(url, { headers: sent, signal: controller.signal, cache: "no-store" });
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

/** Wire a sign-in form: calls check(session) to test the token; shows "Token refused" on 401. */
export function signIn({ session, role, form, input, message, onSignedIn }) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const token = input.value.trim();
    if (!token) { message.textContent = "Paste your token first."; input.focus(); return; }
    session.token = token;
    message.textContent = "";
    try {
      await onSignedIn();
      input.value = "";
    } catch (error) {
      session.token = null;
      message.textContent = explain(error, role);
      input.focus();
      input.select();
    }
  });
}
