// The agent console: sign in, the live handoff queue, a conversation's transcript and actions.
//
// New handoffs arrive on GET /v1/agent/handoffs/stream, read with fetch (resumable with
// Last-Event-ID). The queue is also re-read every 5 s (claims and resolves by other agents are
// not on that stream), and every 2 s while the stream is down. The page is signed in with an
// account (session cookie); a session that ends sends the agent back to the sign-in page.
import { ApiError, Session, clock, duration, explain, h, randomId, signInAgain, streamEvents } from "./common.js";

const session = new Session();
const $ = (id) => document.getElementById(id);
const el = {
  console: $("console"), live: $("live"), alert: $("alert"), announce: $("announce"),
  queue: $("queue"), queueEmpty: $("queue-empty"), queueCount: $("queue-count"),
  detail: $("detail"), detailNone: $("detail-none"), title: $("detail-title"), state: $("detail-state"),
  meta: $("detail-meta"), detailAlert: $("detail-alert"), claim: $("claim"), resolve: $("resolve"),
  giveback: $("giveback"), transcript: $("transcript"), reply: $("reply"), replyText: $("reply-text"),
  attributes: $("attributes"), notes: $("notes"),
};

const AUTHORS = { customer: "Customer", bot: "Bot", agent: "Agent", system: "Notice" };
let stopStream = null;
let queueTimer = null;
let streamUp = false;
let known = new Set();
let firstLoad = true;
let current = null;       // the open conversation's last detail
let seen = new Set();     // seqs shown in the transcript
let conversationSource = null;
let detailTimer = null;
let stopped = false;

const me = () => $("account-name").textContent;

function showError(error) {
  if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
    signOut(explain(error, "agent"));
    return;
  }
  el.alert.textContent = explain(error, "agent");
}

// ---- the queue ------------------------------------------------------------------------------
async function loadQueue() {
  const data = await session.api("GET", "/v1/agent/handoffs");
  el.alert.textContent = "";
  renderQueue(data.handoffs);
  return data;
}

function renderQueue(handoffs) {
  const fresh = handoffs.filter((entry) => !known.has(entry.conversation_id));
  if (!firstLoad && fresh.length) {
    el.announce.textContent = `New handoff from ${fresh.map((e) => e.contact_id).join(", ")}`;
  }
  firstLoad = false;
  known = new Set(handoffs.map((entry) => entry.conversation_id));
  el.queueCount.textContent = String(handoffs.length);
  el.queueEmpty.hidden = handoffs.length > 0;
  const focused = document.activeElement && document.activeElement.dataset.conversation;
  el.queue.replaceChildren(...handoffs.map((entry) => {
    const said = entry.attribute && entry.attribute.value;
    const button = h("button", {
      type: "button", "data-conversation": entry.conversation_id,
      "aria-current": current && current.conversation_id === entry.conversation_id ? "true" : "false",
      onclick: () => openConversation(entry.conversation_id),
    }, [
      h("span", { class: "contact", text: entry.contact_id }),
      h("span", { class: "meta", text: `waiting ${duration(entry.waiting_s)} · ${entry.reason || "handed off"}` }),
      said ? h("span", { class: "said", text: `“${said}”` }) : "",
      entry.claimed_by ? h("span", { class: "badge claimed", text: `claimed by ${entry.claimed_by}` }) : "",
    ]);
    return h("li", {}, [button]);
  }));
  if (focused) {
    const again = el.queue.querySelector(`[data-conversation="${CSS.escape(focused)}"]`);
    if (again) again.focus();
  }
}

function setLive(up, error) {
  streamUp = up;
  el.live.classList.toggle("off", !up);
  el.live.textContent = up ? "Live" : "Live updates lost — checking every 2 s";
  if (error && (error.status === 401 || error.status === 403)) showError(error);
  scheduleQueue();
}

function scheduleQueue() {
  clearTimeout(queueTimer);
  queueTimer = setTimeout(async () => {
    try { await loadQueue(); } catch (error) { showError(error); }
    if (!stopped) scheduleQueue();
  }, streamUp ? 5000 : 2000);
}

// ---- one conversation -------------------------------------------------------------------------
async function openConversation(conversationId) {
  if (!current || current.conversation_id !== conversationId) {
    closeConversation();
    current = { conversation_id: conversationId };
    el.detail.hidden = false;
    el.detailNone.hidden = true;
    el.detailAlert.textContent = "";
    el.detailAlert.className = "alert";
  }
  for (const button of el.queue.querySelectorAll("button")) {
    button.setAttribute("aria-current", button.dataset.conversation === conversationId ? "true" : "false");
  }
  try {
    await loadDetail();
    el.title.focus();
    watchConversation();
  } catch (error) {
    detailError(error);
  }
}

function closeConversation() {
  if (conversationSource) { conversationSource.close(); conversationSource = null; }
  clearInterval(detailTimer);
  current = null;
  seen = new Set();
  el.transcript.replaceChildren();
}

async function loadDetail() {
  const id = current.conversation_id;
  const data = await session.api("GET", `/v1/agent/conversations/${encodeURIComponent(id)}`);
  if (!current || current.conversation_id !== id) return;
  current = data;
  renderDetail(data);
}

function renderDetail(data) {
  el.title.textContent = `Conversation with ${data.contact_id}`;
  el.state.textContent = data.state.replace(/_/g, " ");
  el.state.className = `badge state-${data.state}`;
  const parts = [`flow ${data.flow}`, `channel ${data.channel}`];
  if (data.handoff_reason) parts.push(`reason: ${data.handoff_reason}`);
  if (data.failure_reason) parts.push(`failure: ${data.failure_reason}`);
  parts.push(data.claimed_by ? `claimed by ${data.claimed_by}` : "not claimed");
  el.meta.textContent = parts.join(" · ");
  const handed = data.state === "handed_off";
  const mine = handed && data.claimed_by && (!me() || data.claimed_by === me());
  el.claim.hidden = !handed || Boolean(data.claimed_by);
  el.resolve.disabled = el.giveback.disabled = !handed;
  el.reply.hidden = !mine;
  if (!handed) {
    setDetailAlert(data.state === "closed" ? "This conversation is resolved." : "The bot has this conversation.", "ok");
  } else if (data.claimed_by && !mine) {
    setDetailAlert(`${data.claimed_by} is answering this conversation.`, "warn");
  }
  for (const message of data.messages) addMessage(message);
  el.attributes.replaceChildren(...Object.entries(data.attributes).flatMap(([name, value]) => [
    h("dt", { text: name }), h("dd", { text: value })]));
  if (!Object.keys(data.attributes).length) el.attributes.replaceChildren(h("dd", { class: "muted", text: "None" }));
  el.notes.replaceChildren(...data.notes.map((note) => h("li", { text: `${note.text} (${clock(note.at)})` })));
  if (!data.notes.length) el.notes.replaceChildren(h("li", { class: "muted", text: "No notes" }));
}

function addMessage(message) {
  if (seen.has(message.seq)) return;
  seen.add(message.seq);
  const item = h("li", { class: message.author }, [
    h("span", { class: "who", text: `${AUTHORS[message.author] || message.author}${message.agent ? ` ${message.agent}` : ""} · ${clock(message.at)}` }),
    h("p", { text: message.text }),
  ]);
  const after = [...el.transcript.children].find((li) => Number(li.dataset.seq) > message.seq);
  item.dataset.seq = String(message.seq);
  el.transcript.insertBefore(item, after || null);
  el.transcript.scrollTop = el.transcript.scrollHeight;
}

function watchConversation() {
  // The conversation's messages are public (the widget reads them too): plain EventSource.
  if (conversationSource) conversationSource.close();
  const id = current.conversation_id;
  const last = Math.max(0, ...seen);
  conversationSource = new EventSource(`/v1/conversations/${encodeURIComponent(id)}/events?after=${last}`);
  let refresh = null;
  conversationSource.addEventListener("message", (event) => {
    addMessage(JSON.parse(event.data));
    clearTimeout(refresh);
    refresh = setTimeout(() => loadDetail().catch(detailError), 300);
  });
  clearInterval(detailTimer);
  detailTimer = setInterval(() => { if (current) loadDetail().catch(detailError); }, 3000);
}

function setDetailAlert(text, kind) {
  el.detailAlert.textContent = text;
  el.detailAlert.className = `alert ${kind}`;
}

function detailError(error) {
  if (error instanceof ApiError && (error.status === 401 || error.status === 403)) return showError(error);
  setDetailAlert(explain(error, "agent"), "error");
}

async function act(button, path, done) {
  const id = current.conversation_id;
  button.disabled = true;
  try {
    const data = await session.api("POST", `/v1/agent/conversations/${encodeURIComponent(id)}/${path}`);
    await loadDetail();
    if (done) done(data);
    await loadQueue();
  } catch (error) {
    detailError(error);
    loadDetail().catch(() => {});
  } finally {
    button.disabled = false;
  }
}

el.claim.addEventListener("click", () => act(el.claim, "claim", () => {
  setDetailAlert("You claimed this conversation. Reply below.", "ok");
  el.replyText.focus();
}));
// After these, the refreshed detail says so ("This conversation is resolved.", "The bot has ...").
el.resolve.addEventListener("click", () => act(el.resolve, "resolve"));
el.giveback.addEventListener("click", () => act(el.giveback, "return"));

el.reply.addEventListener("submit", async (event) => {
  event.preventDefault();
  const text = el.replyText.value.trim();
  if (!text) { el.replyText.focus(); return; }
  const id = current.conversation_id;
  const button = el.reply.querySelector("button");
  button.disabled = true;
  try {
    const body = { text, client_message_id: randomId("a-") };
    await session.api("POST", `/v1/agent/conversations/${encodeURIComponent(id)}/messages`, body);
    el.replyText.value = "";
    await loadDetail();
  } catch (error) {
    detailError(error);
  } finally {
    button.disabled = false;
    el.replyText.focus();
  }
});
el.replyText.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    el.reply.requestSubmit();
  }
});

// ---- starting and stopping -------------------------------------------------------------------------
async function enter() {
  try { await loadQueue(); } catch (error) { showError(error); }
  if (stopped) return;
  el.title.textContent = "Conversation";
  if (stopStream) stopStream();
  stopStream = streamEvents("/v1/agent/handoffs/stream", {},
    (name) => { if (name === "handoff") loadQueue().catch(showError); }, setLive);
  scheduleQueue();
}

function signOut(message) {
  // The session ended (signed out elsewhere, expired, account deleted): sign in again.
  stopped = true;
  if (stopStream) { stopStream(); stopStream = null; }
  clearTimeout(queueTimer);
  closeConversation();
  el.alert.textContent = message || "";
  signInAgain();
}

enter();
