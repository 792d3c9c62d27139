"use strict";
const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem("botfleet-token");
const charts = {};

async function api(path, options = {}) {
  const res = await fetch("/api/v1" + path, { ...options, headers: { authorization: "Bearer " + token, ...(options.body ? { "content-type": "application/json" } : {}) } });
  const body = res.status === 204 ? null : await res.json();
  if (!res.ok) { const e = new Error(body && body.error ? body.error.message : res.statusText); e.code = body && body.error ? body.error.code : "http_" + res.status; e.status = res.status; throw e; }
  return body;
}
function cell(tr, text) { const td = document.createElement("td"); td.textContent = text == null ? "–" : String(text); tr.appendChild(td); return td; }
function fill(tableId, rows, render) {
  const tbody = $(tableId).querySelector("tbody"); tbody.replaceChildren();
  for (const r of rows) { const tr = document.createElement("tr"); render(tr, r); tbody.appendChild(tr); }
  if (rows.length === 0) { const tr = document.createElement("tr"); const td = cell(tr, "none"); td.colSpan = 9; tbody.appendChild(tr); }
}
function chart(id, type, labels, datasets) {
  if (charts[id]) charts[id].destroy();
  charts[id] = new Chart($(id), { type, data: { labels, datasets }, options: { responsive: true, maintainAspectRatio: false, animation: false, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } } });
}
function showError(e) { $("error").textContent = e ? (e.code ? e.code + ": " : "") + e.message : ""; }

async function login() {
  try {
    let bots = null;
    try { bots = await api("/bots?limit=500"); } catch (e) {
      if (e.code !== "owner_token_required") throw e;
    }
    $("login").hidden = true; $("logout").hidden = false;
    if (bots) { $("who").textContent = "owner token"; $("owner").hidden = false; showBots(bots.items); }
    else { $("who").textContent = "admin token"; $("admin").hidden = false; await showFleet(); }
  } catch (e) {
    sessionStorage.removeItem("botfleet-token"); token = null;
    $("loginError").textContent = e.message;
  }
}
function showBots(bots) {
  fill("bots", bots, (tr, b) => {
    tr.className = "bot"; tr.dataset.bot = b.botId;
    cell(tr, label(b.botId, b.name)); cell(tr, b.state); cell(tr, b.kind); cell(tr, b.lastActivityAt);
    tr.addEventListener("click", () => selectBot(b.botId, b.name));
  });
  if (bots.length > 0) selectBot(bots[0].botId, bots[0].name);
}
const iso = (d) => d.toISOString().slice(0, 10);
// one name for a bot everywhere (banner, chat page, CLI): its id, with its @username (a name that
// ends in "bot" is a Telegram username) or the name it was registered under
function label(botId, name) {
  if (!name || name === botId) return botId;
  return botId + " (" + (/^[A-Za-z][A-Za-z0-9_]{1,29}bot$/i.test(name) ? "@" : "") + name + ")";
}
async function selectBot(botId, name) {
  showError(null);
  for (const tr of document.querySelectorAll("tr.bot")) tr.classList.toggle("selected", tr.dataset.bot === botId);
  $("botView").hidden = false; $("botTitle").textContent = label(botId, name); $("botView").dataset.bot = botId; $("botView").dataset.name = name || "";
  if (!$("to").value) { const now = new Date(); $("to").value = iso(now); $("from").value = iso(new Date(now.getTime() - 29 * 864e5)); }
  try {
    const [a, chats] = await Promise.all([
      api("/bots/" + encodeURIComponent(botId) + "/analytics?from=" + $("from").value + "&to=" + $("to").value),
      api("/bots/" + encodeURIComponent(botId) + "/chats?limit=20")
    ]);
    const sum = (k) => a.days.reduce((s, d) => s + d[k], 0);
    const numbers = [["Messages in", sum("messagesIn")], ["Messages out", sum("messagesOut")], ["New users", sum("newUsers")],
      ["Reply p50 ms", a.replyLatencyMs.p50], ["Reply p90 ms", a.replyLatencyMs.p90], ["Reply p99 ms", a.replyLatencyMs.p99]];
    $("numbers").replaceChildren(...numbers.map(([k, v]) => { const d = document.createElement("div"); d.dataset.number = k; const b = document.createElement("b"); b.textContent = v == null ? "–" : String(v); d.append(b, k); return d; }));
    const days = a.days.map((d) => d.day);
    chart("messagesChart", "bar", days, [{ label: "in", data: a.days.map((d) => d.messagesIn), backgroundColor: "#3b7dd8" }, { label: "out", data: a.days.map((d) => d.messagesOut), backgroundColor: "#8cc0ee" }]);
    chart("usersChart", "bar", days, [{ label: "new", data: a.days.map((d) => d.newUsers), backgroundColor: "#2f9e6a", stack: "u" }, { label: "returning", data: a.days.map((d) => d.returningUsers), backgroundColor: "#9bd3b4", stack: "u" }]);
    chart("weeklyChart", "line", a.weeklyActiveUsers.map((w) => w.week), [{ label: "users", data: a.weeklyActiveUsers.map((w) => w.users), borderColor: "#d8843b" }]);
    const weeks = Math.max(1, ...a.retention.map((c) => c.activeByWeek.length));
    const head = document.createElement("tr"); ["Cohort", "Users", ...Array.from({ length: weeks }, (_, i) => "week " + i)].forEach((t) => { const th = document.createElement("th"); th.textContent = t; head.appendChild(th); });
    $("retention").querySelector("thead").replaceChildren(head);
    fill("retention", a.retention, (tr, c) => { cell(tr, c.cohortWeek); cell(tr, c.users); for (let i = 0; i < weeks; i++) cell(tr, c.activeByWeek[i] == null ? "" : Math.round(100 * c.activeByWeek[i] / c.users) + "%"); });
    fill("chats", chats.items, (tr, c) => { cell(tr, c.chatId); cell(tr, c.chatType); cell(tr, c.messagesIn); cell(tr, c.messagesOut); cell(tr, c.lastMessageAt); });
  } catch (e) { showError(e); }
}
async function showFleet() {
  showError(null);
  try {
    const [status, dead] = await Promise.all([api("/fleet/status"), api("/dead-letters")]);
    fill("fleetBots", status.bots, (tr, b) => { cell(tr, b.botId); cell(tr, b.state); cell(tr, b.node); cell(tr, b.version); cell(tr, b.inboxLag); cell(tr, b.lastError); });
    fill("partitions", status.partitions, (tr, p) => { cell(tr, p.partition); cell(tr, p.projectionLag); cell(tr, p.projectorStalled ? "STALLED" : "ok"); cell(tr, p.deadLetters); });
    fill("deadLetters", dead.items, (tr, d) => {
      cell(tr, d.partition); cell(tr, d.id); cell(tr, d.group); cell(tr, d.reason);
      const b = document.createElement("button"); b.textContent = "Retry"; b.dataset.retry = d.id;
      b.addEventListener("click", async () => { b.disabled = true; try { await api("/dead-letters/" + d.partition + "/" + encodeURIComponent(d.id) + "/retry", { method: "POST" }); await showFleet(); } catch (e) { showError(e); b.disabled = false; } });
      const td = document.createElement("td"); td.appendChild(b); tr.appendChild(td);
    });
  } catch (e) { showError(e); }
}
$("loginForm").addEventListener("submit", (ev) => { ev.preventDefault(); token = $("token").value.trim(); sessionStorage.setItem("botfleet-token", token); login(); });
$("logout").addEventListener("click", () => { sessionStorage.removeItem("botfleet-token"); location.reload(); });
for (const id of ["from", "to"]) $(id).addEventListener("change", () => { const b = $("botView").dataset.bot; if (b) selectBot(b, $("botView").dataset.name); });
if (token) login();
