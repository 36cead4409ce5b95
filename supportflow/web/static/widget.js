/* SupportFlow chat widget: one script tag builds a floating chat box.
 *
 *   <script src="https://support.example/static/widget.js" data-flow="default" defer></script>
 *
 * Attributes: data-flow, data-contact (helpdesk contact id; a random visitor id otherwise),
 * data-name, data-title, data-open ("true" opens the box at once).
 * It starts a conversation (POST /v1/conversations), posts messages with a client_message_id,
 * receives messages from the SSE stream (resuming with Last-Event-ID) and falls back to polling
 * GET .../messages?after=N when the stream fails. The conversation id lives in sessionStorage.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || window.__supportflowWidget) return;
  window.__supportflowWidget = true;

  var BASE = new URL(script.src, location.href).origin;
  var FLOW = script.dataset.flow || "default";
  var TITLE = script.dataset.title || "Chat with us";
  var KEY = "supportflow.widget." + FLOW;
  var POLL_MS = 2000;
  var STATE_MS = 5000;

  function stored(name) { try { return sessionStorage.getItem(KEY + "." + name); } catch (e) { return null; } }
  function store(name, value) {
    try { value === null ? sessionStorage.removeItem(KEY + "." + name) : sessionStorage.setItem(KEY + "." + name, value); } catch (e) { /* private mode */ }
  }
  function randomId(prefix) {
    var bytes = new Uint8Array(8);
    crypto.getRandomValues(bytes);
    return prefix + Array.prototype.map.call(bytes, function (b) { return b.toString(16).padStart(2, "0"); }).join("");
  }
  var CONTACT = script.dataset.contact || stored("contact") || randomId("visitor-");
  store("contact", CONTACT);

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

  // ---- the box, in a shadow root so the host page's styles don't reach it -------------------
  var host = h("div", { "class": "supportflow-widget" });
  var root = host.attachShadow({ mode: "open" });
  root.appendChild(h("link", { rel: "stylesheet", href: BASE + "/static/widget.css" }));
  var launcher = h("button", { type: "button", "class": "launcher", "aria-expanded": "false",
                               "aria-controls": "sf-panel", text: TITLE });
  var closeButton = h("button", { type: "button", "class": "close", "aria-label": "Close chat", text: "×" });
  var heading = h("h2", { id: "sf-title", text: TITLE });
  var banner = h("p", { "class": "banner", hidden: "" });
  var newButton = h("button", { type: "button", "class": "secondary", hidden: "", text: "Start a new conversation" });
  var status = h("p", { "class": "status", role: "status", "aria-live": "polite" });
  var log = h("ol", { "class": "messages", role: "log", "aria-live": "polite", "aria-label": "Messages",
                      tabindex: "0" });
  var typing = h("p", { "class": "typing", hidden: "", text: "The assistant is typing…" });
  var input = h("textarea", { id: "sf-input", rows: "2", maxlength: "4000", autocomplete: "off",
                              placeholder: "Type your message" });
  var send = h("button", { type: "submit", "class": "send", text: "Send" });
  var form = h("form", { "class": "compose", "aria-label": "Send a message" }, [
    h("label", { "for": "sf-input", "class": "visually-hidden", text: "Your message" }), input, send]);
  var panel = h("section", { id: "sf-panel", "class": "panel", role: "dialog", "aria-labelledby": "sf-title",
                             hidden: "" }, [
    h("header", {}, [heading, closeButton]), banner, status, log, typing, newButton, form]);
  root.appendChild(panel);
  root.appendChild(launcher);
  document.body.appendChild(host);

  // ---- state ---------------------------------------------------------------------------------
  var conversationId = stored("conversation");
  var cursor = 0;
  var seen = {};
  var pending = {};
  var state = null;
  var source = null;
  var pollTimer = null;
  var stateTimer = null;
  var streamFailures = 0;
  var started = false;

  function setStatus(text, isError) {
    status.textContent = text || "";
    status.classList.toggle("error", !!isError);
  }

  function api(method, path, body) {
    var options = { method: method, headers: { "Accept": "application/json" } };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    return fetch(BASE + path, options).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (!response.ok) {
          var error = new Error((data.error && data.error.message) || ("HTTP " + response.status));
          error.status = response.status;
          error.code = data.error && data.error.code;
          throw error;
        }
        return data;
      });
    });
  }

  function authorLabel(author) {
    return { customer: "You", bot: "Assistant", agent: "Support team", system: "Notice" }[author] || author;
  }

  function bubble(author, text) {
    var item = h("li", { "class": "message " + author }, [
      h("span", { "class": "visually-hidden", text: authorLabel(author) + ": " }),
      h("span", { "class": "who", "aria-hidden": "true", text: authorLabel(author) }),
      h("p", { text: text })]);
    return item;
  }

  function scrollDown() { log.scrollTop = log.scrollHeight; }

  function addMessage(message) {
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
      refreshState();
    }
    scrollDown();
  }

  function showState(next) {
    state = next;
    var handed = next === "handed_off";
    var closed = next === "closed";
    banner.hidden = !(handed || closed);
    banner.className = "banner " + (closed ? "closed" : "handed");
    banner.textContent = closed ? "This conversation is closed. Thanks for writing to us!"
      : handed ? "You've been handed to a person from our team. They'll answer here." : "";
    if (handed || closed) typing.hidden = true;
    input.disabled = send.disabled = closed;
    newButton.hidden = !closed;
    if (closed) stopLive();
    scrollDown();
  }

  function refreshState() {
    if (!conversationId) return Promise.resolve();
    return api("GET", "/v1/conversations/" + encodeURIComponent(conversationId)).then(function (data) {
      showState(data.state);
    }).catch(function (error) {
      if (error.status === 404) lost();
    });
  }

  // ---- receiving: SSE first, polling when the stream fails ---------------------------------
  function stopLive() {
    if (source) { source.close(); source = null; }
    if (pollTimer) { clearTimeout(pollTimer); pollTimer = null; }
  }

  function openStream() {
    stopLive();
    if (!window.EventSource) return startPolling();
    var url = BASE + "/v1/conversations/" + encodeURIComponent(conversationId) + "/events?after=" + cursor;
    source = new EventSource(url);  // on reconnect the browser sends Last-Event-ID itself
    source.onopen = function () { streamFailures = 0; setStatus(""); };
    source.addEventListener("message", function (event) {
      try { addMessage(JSON.parse(event.data)); } catch (e) { /* not a message */ }
    });
    source.onerror = function () {
      // The server ends each stream after a while and the browser reconnects; count failures
      // without a successful open in between, and poll instead after three of them.
      streamFailures += 1;
      if (source && (source.readyState === EventSource.CLOSED || streamFailures >= 3)) {
        startPolling();
      }
    };
  }

  function startPolling() {
    stopLive();
    var failures = 0;
    var tries = 0;
    function tick() {
      api("GET", "/v1/conversations/" + encodeURIComponent(conversationId) + "/messages?after=" + cursor)
        .then(function (page) {
          failures = 0;
          setStatus("");
          page.messages.forEach(addMessage);
          if (page.state !== state) showState(page.state);
        })
        .catch(function (error) {
          failures += 1;
          if (error.status === 404) { lost(); return; }
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
    conversationId = null;
    store("conversation", null);
  }

  function lost() {
    // The server no longer knows this conversation (expired or deleted): offer a new one.
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

  function start() {
    if (started) return Promise.resolve();
    started = true;
    setStatus("Connecting…");
    var ready = conversationId ? resume() : Promise.resolve(false);
    return ready.then(function (resumed) {
      if (resumed) return;
      var contact = { id: CONTACT };
      if (script.dataset.name) contact.name = script.dataset.name;
      return api("POST", "/v1/conversations", { contact: contact, flow: FLOW }).then(function (data) {
        conversationId = data.conversation_id;
        store("conversation", conversationId);
        showState(data.state);
        addMessage(data.welcome);
        openStream();
        setStatus("");
      });
    }).catch(function (error) {
      started = false;
      setStatus(error.status ? "The chat is unavailable: " + error.message
        : "Can't reach the server — retrying", true);
      setTimeout(function () { if (!panel.hidden) start(); }, 3000);
    });
  }

  function resume() {
    var path = "/v1/conversations/" + encodeURIComponent(conversationId) + "/messages?after=0&limit=500";
    return api("GET", path).then(function (page) {
      if (page.state === "closed") { reset(); return false; }
      page.messages.forEach(addMessage);
      showState(page.state);
      openStream();
      setStatus("");
      return true;
    }).catch(function (error) {
      if (error.status === 404) { reset(); return false; }
      throw error;
    });
  }

  // ---- sending -------------------------------------------------------------------------------
  function post(text, messageId, item) {
    return api("POST", "/v1/conversations/" + encodeURIComponent(conversationId) + "/messages",
               { text: text, client_message_id: messageId })
      .then(function () {
        setStatus("");
        if (!seen[messageId] && pending[messageId]) typing.hidden = state === "handed_off";
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
      });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value.trim();
    if (!text || !conversationId || state === "closed") return;
    var messageId = randomId("w-");
    var item = bubble("customer", text);
    item.classList.add("pending");
    pending[messageId] = item;
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
    host.classList.add("open");
    start().then(function () { input.focus(); });
    input.focus();
    if (!stateTimer) stateTimer = setInterval(function () {
      if (conversationId && state !== "closed") refreshState();
    }, STATE_MS);
  }

  function close() {
    panel.hidden = true;
    launcher.setAttribute("aria-expanded", "false");
    host.classList.remove("open");
    launcher.focus();
  }

  launcher.addEventListener("click", function () { panel.hidden ? open() : close(); });
  closeButton.addEventListener("click", close);
  panel.addEventListener("keydown", function (event) { if (event.key === "Escape") close(); });
  newButton.addEventListener("click", function () {
    reset();
    started = false;
    start().then(function () { input.focus(); });
  });

  if (script.dataset.open === "true" || stored("open") === "1") open();
  window.addEventListener("pagehide", function () { store("open", panel.hidden ? null : "1"); });
})();
