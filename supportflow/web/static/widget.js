/* SupportFlow chat widget: one script tag builds a floating chat box, on any site.
 *
 *   <script src="https://support.example/static/widget/VERSION/widget.js" integrity="sha384-..."
 *           crossorigin="anonymous" data-flow="default" defer></script>
 *
 * Attributes (all optional): data-flow, data-contact and data-contact-hash (a signed-in user's id
 * and its HMAC-SHA256 under the flow's identity secret, computed by the site's server; without
 * both the visitor is anonymous and keeps their contact with a contact token in localStorage),
 * data-name, data-open ("true" opens the box at once); texts: data-title,
 * data-launcher, data-placeholder, data-send, data-handoff-text, data-closed-text; colours:
 * data-color (the accent) and data-color-text (text on the accent).
 *
 * Nothing inline: the markup is built in a shadow root and styled by widget.css from the script's
 * own folder, so a page with a strict Content-Security-Policy only adds SupportFlow's origin to
 * script-src, style-src and connect-src. The conversation's visitor token travels in the
 * Authorization header, never in a URL: the event stream is read with fetch. Answers 429 and 503
 * are retried after their Retry-After. New messages are announced to screen readers.
 * One file on purpose (longer than our modules usually are): a site embeds it with one tag and
 * one integrity hash, so it shares no code with common.js, which the app's own pages load.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || window.__supportflowWidget) return;
  window.__supportflowWidget = true;

  var SCRIPT_URL = new URL(script.src, location.href);
  var BASE = SCRIPT_URL.origin;
  var data = script.dataset;
  var FLOW = data.flow || "default";
  var TEXT = {
    title: data.title || "Chat with us",
    launcher: data.launcher || data.title || "Chat with us",
    placeholder: data.placeholder || "Type your message",
    send: data.send || "Send",
    handoff: data.handoffText || "You've been handed to a person from our team. They'll answer here.",
    closed: data.closedText || "This conversation is closed. Thanks for writing to us!"
  };
  // An identified user's conversation is kept apart: another user of the same tab never resumes it.
  var IDENTIFIED = !!(data.contact && data.contactHash);
  var KEY = "supportflow.widget." + FLOW + (IDENTIFIED ? ".user." + data.contact : "");
  // An anonymous visitor's contact token outlives the tab: per SupportFlow origin and flow.
  var CONTACT_KEY = "supportflow.contact." + BASE + "." + FLOW;
  var IDENTITY_ERRORS = ["identity_invalid", "identity_required", "identity_not_configured"];
  var POLL_MS = 2000;
  var STATE_MS = 5000;
  var BUSY_RETRIES = 5;
  var MAX_WAIT_S = 900;

  // ---- storage in this tab only (sessionStorage of the host page) ----------------------------
  function stored(name) { try { return sessionStorage.getItem(KEY + "." + name); } catch (e) { return null; } }
  function store(name, value) {
    try {
      if (value === null) sessionStorage.removeItem(KEY + "." + name);
      else sessionStorage.setItem(KEY + "." + name, value);
    } catch (e) { /* storage off: the chat lasts as long as the page */ }
  }
  function contactToken() { try { return localStorage.getItem(CONTACT_KEY); } catch (e) { return null; } }
  function keepContactToken(value) {
    try { if (value) localStorage.setItem(CONTACT_KEY, value); } catch (e) { /* a new contact next time */ }
  }
  function randomId(prefix) {
    var bytes = new Uint8Array(8);
    crypto.getRandomValues(bytes);
    return prefix + Array.prototype.map.call(bytes, function (b) { return b.toString(16).padStart(2, "0"); }).join("");
  }

  function h(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k];
      else if (k === "class") node.className = attrs[k];
      else node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { node.appendChild(c); });
    return node;
  }

  // ---- the box, in a shadow root: the host page's styles don't reach it, nor its styles the page
  var host = document.createElement("supportflow-widget");
  var root = host.attachShadow({ mode: "open" });
  root.appendChild(h("link", { rel: "stylesheet", href: new URL("widget.css", SCRIPT_URL).href }));
  var frame = h("div", { "class": "sf" });
  [["color", "--sf-accent"], ["colorText", "--sf-on-accent"]].forEach(function (pair) {
    var value = data[pair[0]];
    // CSSOM, not a style attribute: allowed under a CSP without 'unsafe-inline'.
    if (value && window.CSS && CSS.supports("color", value)) frame.style.setProperty(pair[1], value);
  });
  var launcher = h("button", { type: "button", "class": "launcher", "aria-expanded": "false",
                               "aria-controls": "sf-panel", text: TEXT.launcher });
  var closeButton = h("button", { type: "button", "class": "close", "aria-label": "Close chat", text: "×" });
  var heading = h("h2", { id: "sf-title", text: TEXT.title });
  var banner = h("p", { "class": "banner", "aria-live": "polite", hidden: "" });
  var newButton = h("button", { type: "button", "class": "secondary", hidden: "", text: "Start a new conversation" });
  var status = h("p", { "class": "status", role: "status", "aria-live": "polite" });
  // The transcript is a log, announced through `announcer` instead (history is not re-read).
  var log = h("ol", { "class": "messages", role: "log", "aria-live": "off", "aria-label": "Messages",
                      tabindex: "0" });
  var announcer = h("div", { "class": "visually-hidden", "aria-live": "polite", "data-announcer": "" });
  var typing = h("p", { "class": "typing", hidden: "", text: "The assistant is typing…" });
  var input = h("textarea", { id: "sf-input", rows: "2", maxlength: "4000", autocomplete: "off",
                              placeholder: TEXT.placeholder });
  var send = h("button", { type: "submit", "class": "send", text: TEXT.send });
  var form = h("form", { "class": "compose", "aria-label": "Send a message" }, [
    h("label", { "for": "sf-input", "class": "visually-hidden", text: "Your message" }), input, send]);
  var panel = h("section", { id: "sf-panel", "class": "panel", role: "dialog", "aria-labelledby": "sf-title",
                             hidden: "" }, [
    h("header", {}, [heading, closeButton]), banner, status, log, typing, newButton, form]);
  frame.appendChild(panel);
  frame.appendChild(launcher);
  frame.appendChild(announcer);
  root.appendChild(frame);

  // ---- state ---------------------------------------------------------------------------------
  var conversationId = stored("conversation");
  var token = stored("token");
  var tokenExpires = Number(stored("token-expires") || 0);
  var cursor = 0;
  var seen = {};
  var pending = {};
  var state = null;
  var stream = null;
  var pollTimer = null;
  var stateTimer = null;
  var renewTimer = null;
  var streamFailures = 0;
  var started = false;
  var starting = null;

  function setStatus(text, isError) {
    status.textContent = text || "";
    status.classList.toggle("error", !!isError);
  }

  function announce(text) {
    var line = h("p", { text: text });
    announcer.appendChild(line);
    while (announcer.childNodes.length > 3) announcer.removeChild(announcer.firstChild);
  }

  // ---- HTTP: the token in a header, busy answers retried after Retry-After -------------------
  function sleep(ms) { return new Promise(function (resolve) { setTimeout(resolve, ms); }); }

  function retryAfterSeconds(response) {
    var value = response.headers.get("Retry-After");
    var seconds = Number(value);
    if (value && !isNaN(seconds)) return Math.min(Math.max(seconds, 1), MAX_WAIT_S);
    var date = value ? Date.parse(value) : NaN;
    if (!isNaN(date)) return Math.min(Math.max((date - Date.now()) / 1000, 1), MAX_WAIT_S);
    return 5;
  }

  function busy(response) { return response.status === 429 || response.status === 503; }

  function sayBusy(response, seconds) {
    setStatus((response.status === 429 ? "Too many messages at once" : "The service is busy")
      + " — trying again in " + Math.ceil(seconds) + " s", true);
  }

  function failure(response, body) {
    var error = new Error((body.error && body.error.message) || ("HTTP " + response.status));
    error.status = response.status;
    error.code = body.error && body.error.code;
    return error;
  }

  function request(method, path, body, extraHeaders) {
    var headers = { "Accept": "application/json" };
    if (token) headers["Authorization"] = "Bearer " + token;
    Object.keys(extraHeaders || {}).forEach(function (k) { headers[k] = extraHeaders[k]; });
    var options = { method: method, headers: headers, credentials: "omit", cache: "no-store" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    return fetch(BASE + path, options);
  }

  function api(method, path, body) {
    function attempt(left) {
      return request(method, path, body).then(function (response) {
        if (busy(response) && left > 0) {
          var seconds = retryAfterSeconds(response);
          sayBusy(response, seconds);
          return sleep(seconds * 1000).then(function () { return attempt(left - 1); });
        }
        return response.json().catch(function () { return {}; }).then(function (answer) {
          if (!response.ok) throw failure(response, answer);
          return answer;
        });
      });
    }
    return attempt(BUSY_RETRIES);
  }

  function conversationPath(rest) {
    return "/v1/conversations/" + encodeURIComponent(conversationId) + (rest || "");
  }

  // ---- the visitor token: kept with the conversation, renewed at half its life -------------
  function keepToken(value, expiresIn) {
    token = value;
    tokenExpires = Date.now() + expiresIn * 1000;
    store("token", token);
    store("token-expires", String(tokenExpires));
    scheduleRenewal();
  }

  function scheduleRenewal() {
    if (renewTimer) clearTimeout(renewTimer);
    renewTimer = null;
    if (!token) return;
    var wait = Math.max((tokenExpires - Date.now()) / 2, 1000);
    renewTimer = setTimeout(renew, Math.min(wait, 2147483000));
  }

  function renew() {
    if (!conversationId || state === "closed") return;
    api("POST", conversationPath("/token")).then(function (answer) {
      keepToken(answer.visitor_token, answer.visitor_token_expires_in);
    }).catch(function (error) {
      if (error.status === 401 || error.status === 403 || error.status === 404) lost();
      else if (error.status === 409) refreshState();
      else renewTimer = setTimeout(renew, 10000);
    });
  }

  // ---- messages ------------------------------------------------------------------------------
  function authorLabel(author) {
    return { customer: "You", bot: "Assistant", agent: "Support team", system: "Notice" }[author] || author;
  }

  function bubble(author, text) {
    return h("li", { "class": "message " + author }, [
      h("span", { "class": "visually-hidden", text: authorLabel(author) + ": " }),
      h("span", { "class": "who", "aria-hidden": "true", text: authorLabel(author) }),
      h("p", { text: text })]);
  }

  function scrollDown() { log.scrollTop = log.scrollHeight; }

  // The transcript names a customer's message "c:" + its client_message_id (README: message ids).
  function transcriptId(messageId) { return "c:" + messageId; }

  function addMessage(message, live) {
    if (seen[message.seq]) return;
    seen[message.seq] = true;
    cursor = Math.max(cursor, message.seq);
    var mine = pending[message.id];
    if (mine) {
      mine.classList.remove("pending", "failed");
      var note = mine.querySelector(".note");
      if (note) note.remove();
      delete pending[message.id];
    } else {
      log.appendChild(bubble(message.author, message.text));
    }
    if (message.author === "customer") {
      typing.hidden = state === "handed_off" || state === "closed";
    } else {
      typing.hidden = true;
      // A live reply may come with a new state (handed off, closed); history comes with its own.
      if (live) {
        announce(authorLabel(message.author) + ": " + message.text);
        refreshState();
      }
    }
    scrollDown();
  }

  function showState(next) {
    state = next;
    var handed = next === "handed_off";
    var closed = next === "closed";
    banner.hidden = !(handed || closed);
    banner.className = "banner " + (closed ? "closed" : "handed");
    banner.textContent = closed ? TEXT.closed : handed ? TEXT.handoff : "";
    if (handed || closed) typing.hidden = true;
    input.disabled = send.disabled = closed;
    newButton.hidden = !closed;
    if (closed) stopLive();
    scrollDown();
  }

  function refreshState() {
    if (!conversationId) return Promise.resolve();
    return api("GET", conversationPath()).then(function (answer) {
      showState(answer.state);
    }).catch(function (error) {
      if (error.status === 401 || error.status === 404) lost();
    });
  }

  // ---- receiving: server-sent events read with fetch, polling when the stream fails ---------
  function stopLive() {
    if (stream) { stream.abort(); stream = null; }
    if (pollTimer) { clearTimeout(pollTimer); pollTimer = null; }
  }

  function readEvents(response, controller) {
    var reader = response.body.getReader();
    var decoder = new TextDecoder();
    var buffer = "";
    var frameData = [];
    var frameEvent = "message";
    function line(text) {
      if (text === "") {
        if (frameEvent === "message" && frameData.length) {
          try { addMessage(JSON.parse(frameData.join("\n")), true); } catch (e) { /* not a message */ }
        }
        frameData = []; frameEvent = "message";
      } else if (text.charAt(0) !== ":") {
        var colon = text.indexOf(":");
        var field = colon < 0 ? text : text.slice(0, colon);
        var value = colon < 0 ? "" : text.slice(colon + 1).replace(/^ /, "");
        if (field === "data") frameData.push(value);
        else if (field === "event") frameEvent = value;
      }
    }
    function pump() {
      return reader.read().then(function (chunk) {
        if (chunk.done || controller.signal.aborted) return;
        buffer += decoder.decode(chunk.value, { stream: true });
        var lines = buffer.split(/\r\n|\r|\n/);
        buffer = lines.pop();
        lines.forEach(line);
        return pump();
      });
    }
    return pump();
  }

  function openStream() {
    stopLive();
    var controller = new AbortController();
    var opened = Date.now();
    stream = controller;
    // The cursor is the last message seen: the server resumes after it.
    request("GET", conversationPath("/events"), undefined, { "Accept": "text/event-stream",
                                                             "Last-Event-ID": String(cursor) })
      .then(function (response) {
        if (stream !== controller) return null;
        if (response.status === 401 || response.status === 404) { lost(); return null; }
        // A server that holds all the streams it can (or this visitor's share) says 429/503:
        // the messages still come by polling, which retries the stream now and then. Nothing
        // the visitor sent is refused, so there is nothing to tell them.
        if (busy(response)) { startPolling(); return null; }
        if (!response.ok || !response.body) throw new Error("stream refused");
        streamFailures = 0;
        setStatus("");
        // The server ends each response after a while: reconnect at once, from the cursor.
        return readEvents(response, controller).then(function () { return "ended"; });
      })
      .then(function (outcome) {
        if (outcome !== "ended" || stream !== controller) return;
        // A stream that ends at once must not turn into a busy loop.
        setTimeout(function () { if (stream === controller) openStream(); },
                   Date.now() - opened < 1000 ? 1000 : 0);
      })
      .catch(function () {
        if (stream !== controller || controller.signal.aborted) return;
        streamFailures += 1;
        if (streamFailures >= 3) { startPolling(); return; }
        setTimeout(function () { if (stream === controller) openStream(); },
                   1000 * streamFailures);
      });
  }

  function startPolling() {
    stopLive();
    var failures = 0;
    var tries = 0;
    function tick() {
      api("GET", conversationPath("/messages?after=" + cursor))
        .then(function (page) {
          failures = 0;
          setStatus("");
          page.messages.forEach(function (m) { addMessage(m, true); });
          if (page.state !== state) showState(page.state);
        })
        .catch(function (error) {
          failures += 1;
          if (error.status === 401 || error.status === 404) { lost(); return; }
          setStatus("Can't reach the server — retrying", true);
        })
        .then(function () {
          tries += 1;
          if (state === "closed" || !conversationId) return;
          // Every 15 polls or so, try the stream again.
          if (tries % 15 === 0 && failures === 0) { streamFailures = 0; openStream(); return; }
          pollTimer = setTimeout(tick, failures ? Math.min(POLL_MS * (failures + 1), 15000) : POLL_MS);
        });
    }
    tick();
  }

  // ---- starting and resuming ---------------------------------------------------------------
  function forget() {
    stopLive();
    if (renewTimer) { clearTimeout(renewTimer); renewTimer = null; }
    conversationId = null;
    token = null;
    ["conversation", "token", "token-expires"].forEach(function (name) { store(name, null); });
  }

  function lost() {
    // The server no longer opens this conversation (expired, deleted, or the token is no longer
    // valid): offer a new one.
    reset();
    started = false;
    setStatus("This conversation is no longer available.", true);
    newButton.hidden = false;
    input.disabled = send.disabled = true;
  }

  function reset() {
    forget();
    cursor = 0; seen = {}; pending = {}; state = null;
    log.textContent = "";
    showState(null);
  }

  function explainStartFailure(error) {
    // The site vouched for a user it could not prove (a wrong or missing data-contact-hash).
    if (error.status === 403 && IDENTITY_ERRORS.indexOf(error.code) >= 0) {
      return Promise.resolve("We couldn't confirm who you are, so the chat can't start. "
                             + "Please sign in again or reload the page.");
    }
    if (error.status) return Promise.resolve("The chat is unavailable: " + error.message);
    // A network error, or a refusal the browser hides (CORS): can the server be reached at all?
    return fetch(BASE + "/healthz", { mode: "no-cors", credentials: "omit", cache: "no-store" })
      .then(function () { return "This chat isn't available on this site."; })
      .catch(function () { return "Can't reach the server — retrying"; });
  }

  function start() {
    if (started) return starting || Promise.resolve();
    started = true;
    setStatus("Connecting…");
    var ready = conversationId && token && tokenExpires > Date.now() ? resume() : Promise.resolve(false);
    starting = ready.then(function (resumed) {
      if (resumed) return;
      reset();
      var contact = IDENTIFIED ? { id: data.contact, id_hash: data.contactHash } : {};
      if (data.name) contact.name = data.name;
      var body = { contact: contact, flow: FLOW };
      var kept = IDENTIFIED ? null : contactToken();
      if (kept) body.contact_token = kept;
      return api("POST", "/v1/conversations", body).then(function (answer) {
        keepContactToken(answer.contact_token);
        conversationId = answer.conversation_id;
        store("conversation", conversationId);
        keepToken(answer.visitor_token, answer.visitor_token_expires_in);
        showState(answer.state);
        addMessage(answer.welcome, true);
        openStream();
        setStatus("");
      });
    }).catch(function (error) {
      started = false;
      return explainStartFailure(error).then(function (text) {
        setStatus(text, true);
        // Only what may pass by itself is tried again: the network and the server's errors.
        if (!error.status || error.status >= 500) {
          setTimeout(function () { if (!panel.hidden) start(); }, text.indexOf("retrying") >= 0 ? 3000 : 30000);
        }
      });
    });
    return starting;
  }

  function resume() {
    return api("GET", conversationPath("/messages?after=0&limit=500")).then(function (page) {
      if (page.state === "closed") return false;
      page.messages.forEach(function (m) { addMessage(m, false); });
      showState(page.state);
      scheduleRenewal();
      openStream();
      setStatus("");
      return true;
    }).catch(function (error) {
      if (error.status === 401 || error.status === 403 || error.status === 404) return false;
      throw error;
    });
  }

  // ---- sending -------------------------------------------------------------------------------
  function post(text, messageId, item) {
    return api("POST", conversationPath("/messages"), { text: text, client_message_id: messageId })
      .then(function () {
        setStatus("");
        if (pending[transcriptId(messageId)]) typing.hidden = state === "handed_off";
      })
      .catch(function (error) {
        item.classList.add("failed");
        var note = h("span", { "class": "note" });
        var again = h("button", { type: "button", "class": "link", text: "Try again" });
        note.appendChild(document.createTextNode(error.status ? error.message + " " : "Not sent. "));
        note.appendChild(again);
        item.appendChild(note);
        again.addEventListener("click", function () {
          note.remove();
          item.classList.remove("failed");
          post(text, messageId, item);  // same id: the server counts it once
        });
        if (error.status === 409) refreshState();
        if (error.status === 401) lost();
      });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value.trim();
    if (!text || state === "closed") return;
    if (!conversationId) {
      // Typed before the conversation was there: send it once it is.
      if (starting) starting.then(function () { if (conversationId) form.requestSubmit(); });
      return;
    }
    var messageId = randomId("w-");
    var item = bubble("customer", text);
    item.classList.add("pending");
    pending[transcriptId(messageId)] = item;
    log.appendChild(item);
    scrollDown();
    input.value = "";
    input.focus();
    post(text, messageId, item);
  });

  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  // ---- opening and closing -------------------------------------------------------------------
  function open() {
    panel.hidden = false;
    launcher.setAttribute("aria-expanded", "true");
    host.classList.add("sf-open");
    start().then(function () { input.focus(); });
    input.focus();
    if (!stateTimer) stateTimer = setInterval(function () {
      if (conversationId && state !== "closed") refreshState();
    }, STATE_MS);
  }

  function close() {
    panel.hidden = true;
    launcher.setAttribute("aria-expanded", "false");
    host.classList.remove("sf-open");
    launcher.focus();
  }

  launcher.addEventListener("click", function () { if (panel.hidden) open(); else close(); });
  closeButton.addEventListener("click", close);
  panel.addEventListener("keydown", function (event) { if (event.key === "Escape") close(); });
  newButton.addEventListener("click", function () {
    reset();
    started = false;
    start().then(function () { input.focus(); });
  });

  function mount() {
    document.body.appendChild(host);
    if (data.open === "true" || stored("open") === "1") open();
    window.addEventListener("pagehide", function () { store("open", panel.hidden ? null : "1"); });
  }
  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);
})();
