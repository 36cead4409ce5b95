// The agent console's knowledge base: list and search articles, write, edit and delete them.
// An article shows "Syncing to the bot…" until the assistant's vector store holds it.
import { ApiError, Session, clock, explain, h, signInAgain } from "./common.js";

const session = new Session();
const $ = (id) => document.getElementById(id);
const el = {
  list: $("kb-list"), count: $("kb-count"), search: $("kb-search"), query: $("kb-query"),
  form: $("kb-form"), formTitle: $("kb-form-title"), title: $("kb-title"), text: $("kb-text"),
  tags: $("kb-tags"), save: $("kb-save"), cancel: $("kb-cancel"), alert: $("kb-alert"),
};
let editing = null;     // the id of the article being edited
let refresh = null;

function say(text, kind) {
  el.alert.textContent = text;
  el.alert.className = `alert ${kind || ""}`;
}

function failed(error) {
  if (error instanceof ApiError && error.status === 401) return signInAgain();
  say(explain(error, "agent"), "error");
}

async function load() {
  clearTimeout(refresh);
  const q = el.query.value.trim();
  try {
    const data = await session.api("GET", `/v1/agent/knowledge?limit=50&q=${encodeURIComponent(q)}`);
    render(data.articles);
    // While an article is on its way to the bot, look again soon.
    if (data.articles.some((a) => !a.synced)) refresh = setTimeout(load, 1500);
  } catch (error) {
    failed(error);
  }
}

function render(articles) {
  el.count.textContent = String(articles.length);
  if (!articles.length) {
    el.list.replaceChildren(h("li", { class: "empty", text: "No articles yet" }));
    return;
  }
  el.list.replaceChildren(...articles.map((article) => h("li", { class: "card article", "data-article": article.id }, [
    h("div", { class: "bar" }, [
      h("h3", { text: article.title }),
      h("span", { class: `badge ${article.synced ? "claimed" : ""}`,
        text: article.synced ? "In the bot's knowledge" : "Syncing to the bot…" }),
    ]),
    h("p", { class: "article-text", text: article.text }),
    h("p", { class: "muted", text: [
      article.tags.length ? `Tags: ${article.tags.join(", ")}` : "",
      `by ${article.updated_by || article.author}, ${clock(article.updated_at)}`,
    ].filter(Boolean).join(" · ") }),
    h("div", { class: "row actions" }, [
      h("button", { type: "button", class: "secondary", text: "Edit", onclick: () => edit(article) }),
      h("button", { type: "button", class: "danger", text: "Delete", onclick: () => remove(article) }),
    ]),
  ])));
}

function edit(article) {
  editing = article.id;
  el.formTitle.textContent = `Edit “${article.title}”`;
  el.title.value = article.title;
  el.text.value = article.text;
  el.tags.value = article.tags.join(", ");
  el.cancel.hidden = false;
  el.save.textContent = "Save changes";
  say("");
  el.title.focus();
}

function reset() {
  editing = null;
  el.form.reset();
  el.formTitle.textContent = "New article";
  el.save.textContent = "Save article";
  el.cancel.hidden = true;
}

async function remove(article) {
  if (!window.confirm(`Delete “${article.title}”? The bot stops using it.`)) return;
  try {
    await session.api("DELETE", `/v1/agent/knowledge/${encodeURIComponent(article.id)}`);
    if (editing === article.id) reset();
    say(`Deleted “${article.title}”.`, "ok");
    await load();
  } catch (error) {
    failed(error);
  }
}

el.form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const body = {
    title: el.title.value.trim(), text: el.text.value.trim(),
    tags: el.tags.value.split(",").map((t) => t.trim()).filter(Boolean),
  };
  if (!body.title || !body.text) { say("Write a title and an answer.", "error"); return; }
  el.save.disabled = true;
  try {
    const path = editing ? `/v1/agent/knowledge/${encodeURIComponent(editing)}` : "/v1/agent/knowledge";
    const saved = await session.api(editing ? "PUT" : "POST", path, body);
    reset();
    say(`Saved “${saved.title}”. The bot will answer from it in a moment.`, "ok");
    await load();
  } catch (error) {
    if (error.status === 422) say(`Check the fields: ${error.message}`, "error");
    else failed(error);
  } finally {
    el.save.disabled = false;
  }
});
el.cancel.addEventListener("click", () => { reset(); say(""); });
el.search.addEventListener("submit", (event) => { event.preventDefault(); load(); });

load();
