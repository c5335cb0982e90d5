// Fanline inbox: live updates (Server-Sent Events), notifications, SMS segment counter, canned
// replies. Plain JavaScript, no build step; every page works without it.
"use strict";
(function () {
  const body = document.body;
  const page = body.dataset.page;
  if (!page) return;

  // ---- live updates -------------------------------------------------------------------------
  const live = document.getElementById("live");
  let timer = null;
  function soon(fn) { clearTimeout(timer); timer = setTimeout(fn, 150); }  // coalesce bursts

  async function swap(url, el) {
    const r = await fetch(url, { credentials: "same-origin" });
    if (r.status === 401) { location.href = "/inbox/login"; return; }
    if (r.ok && el) el.innerHTML = await r.text();
  }
  function refreshQueue() { swap("/inbox/queue-rows?view=" + encodeURIComponent(body.dataset.view), document.getElementById("queue")); }
  function refreshThread() {
    const tl = document.getElementById("timeline");
    swap("/inbox/threads/" + body.dataset.conversation + "/timeline", tl).then(() => { if (tl) tl.lastElementChild?.scrollIntoView({ block: "end" }); });
  }
  function notify(data) {
    if (!("Notification" in window) || Notification.permission !== "granted") return;
    const n = new Notification("Fan needs a person", { body: "Escalated: " + String(data.reason || "").replace(/_/g, " "), tag: "fanline-" + data.contact_id });
    n.onclick = () => { window.focus(); location.href = "/inbox/fans/" + data.contact_id; };
  }
  const events = new EventSource("/api/v1/events");
  events.addEventListener("ready", () => live && live.classList.add("on"));
  events.onerror = () => live && live.classList.remove("on");
  function onEvent(kind) {
    return (e) => {
      const data = JSON.parse(e.data);
      if (kind === "escalation" && !data.joined) notify(data);  // a text joining one is no news
      if (page === "queue") soon(refreshQueue);
      else if (page === "thread" && (kind === "resync" || String(data.contact_id) === body.dataset.contact || String(data.conversation_id) === body.dataset.conversation)) soon(refreshThread);
    };
  }
  // resync: the server's feed reconnected to the database and may have missed events
  for (const kind of ["message", "escalation", "thread", "resync"]) events.addEventListener(kind, onEvent(kind));

  // ---- topics: the list follows new hand-offs and other agents' actions ----------------------
  async function refreshTopics() {
    const r = await fetch(location.pathname + location.search, { credentials: "same-origin" });
    if (r.status === 401) { location.href = "/inbox/login"; return; }
    if (!r.ok) return;
    const fresh = new DOMParser().parseFromString(await r.text(), "text/html");
    for (const id of ["topics", "open-topics", "waiting-texts"]) {
      const el = document.getElementById(id), now = fresh.getElementById(id);
      if (el && now) el.replaceChildren(...now.childNodes);
    }
  }
  async function refreshTopic() {
    if (document.querySelector("#texts input:checked")) return;  // never under the agent's ticks
    const r = await fetch(location.pathname, { credentials: "same-origin" });
    if (!r.ok) return;
    const fresh = new DOMParser().parseFromString(await r.text(), "text/html");
    for (const id of ["texts", "topic-size", "send"]) {
      const el = document.getElementById(id), now = fresh.getElementById(id);
      if (el && now) el.replaceChildren(...now.childNodes);
    }
  }
  if (page === "topic") {
    for (const kind of ["escalation", "topic", "resync"]) events.addEventListener(kind, () => soon(refreshTopic));
  }
  if (page === "topics") {
    for (const kind of ["escalation", "thread", "topic", "resync"]) events.addEventListener(kind, () => soon(refreshTopics));
    setInterval(() => { if (!document.hidden) refreshTopics(); }, 15000);  // the sweep groups texts on its own clock
  }
  const replyForm = document.getElementById("reply-form");
  if (replyForm && page === "topic") replyForm.addEventListener("submit", () => {
    // the hidden request_key already makes a second submit a no-op; this spares the round trip
    setTimeout(() => { document.getElementById("send").disabled = true; }, 0);
  });

  // ---- a teach's retraining: trained by a worker, then live once this server loaded it -------
  const modelStatus = document.getElementById("model-status");
  async function refreshModel() {
    const r = await fetch("/api/v1/model", { credentials: "same-origin" });
    if (!r.ok) return setTimeout(refreshModel, 5000);
    const m = await r.json(), job = m.retrain || {};
    if (job.status === "failed") { modelStatus.textContent = "Retraining failed: " + job.error; return; }
    if (m.live) { modelStatus.textContent = "The new model is live (" + m.model + ")."; modelStatus.dataset.live = "1"; return; }
    modelStatus.textContent = job.status === "done" ? "Trained (" + job.model + "): this server is loading it…"
      : job.status === "training" ? "Retraining the model…" : "Retraining requested: waiting for a worker…";
    setTimeout(refreshModel, 2000);
  }
  if (page === "taught" && modelStatus && modelStatus.dataset.retraining) refreshModel();

  // ---- broadcast progress: a light poll of the JSON API while anything is still moving ------
  const fmt = (n) => Number(n).toLocaleString("en-US");
  async function refreshBroadcasts() {
    const r = await fetch("/api/v1/broadcasts", { credentials: "same-origin" });
    if (r.status === 401) { location.href = "/inbox/login"; return; }
    if (!r.ok) return;
    const data = await r.json();
    const rows = document.querySelectorAll("[data-broadcast]");
    const changed = data.items.length !== rows.length || data.items.some((b) => {
      const el = document.querySelector(`[data-broadcast="${b.id}"]`);
      return !el || el.dataset.status !== b.status;
    });
    if (changed) { location.reload(); return; }  // new broadcast or state: the buttons change too
    for (const b of data.items) {
      const el = document.querySelector(`[data-broadcast="${b.id}"]`);
      for (const f of el.querySelectorAll("dd[data-field], span[data-field]")) {
        if (f.dataset.field in b && f.dataset.field !== "status") f.textContent = fmt(b[f.dataset.field]);
      }
      const bar = el.querySelector("progress");
      bar.max = Math.max(1, b.recipients); bar.value = b.done;
      el.querySelector("[data-field=failed_by_code]").textContent =
        Object.entries(b.failed_by_code).map(([c, n]) => `error ${c}: ${fmt(n)}`).join("  ");
    }
    body.dataset.running = data.running ? "1" : "0";
  }
  if (page === "broadcasts") {
    setInterval(() => { if (body.dataset.running === "1" && !document.hidden) refreshBroadcasts(); }, 3000);
    events.addEventListener("broadcast", () => soon(refreshBroadcasts));
  }

  const ask = document.getElementById("notify");
  if (ask && "Notification" in window && Notification.permission === "default") {
    ask.hidden = false;
    ask.onclick = () => Notification.requestPermission().then(() => { ask.hidden = true; });
  }

  // ---- reply box: segments and canned replies ---------------------------------------------
  const GSM = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
  const EXT = "^{}\\[~]|€\f";
  function segments(text) {
    let septets = 0;
    for (const ch of text) {
      if (GSM.includes(ch)) septets += 1;
      else if (EXT.includes(ch)) septets += 2;
      else {
        const units = text.length;  // UTF-16 code units, as carriers count them
        return { enc: "UCS-2", n: units <= 70 ? 1 : Math.ceil(units / 67), len: units };
      }
    }
    return { enc: "GSM-7", n: septets <= 160 ? 1 : Math.ceil(septets / 153), len: septets };
  }
  const reply = document.getElementById("reply");
  const counter = document.getElementById("segments");
  function count() {
    const s = segments(reply.value);
    counter.textContent = reply.value ? `${s.len} chars · ${s.n} SMS · ${s.enc}` : "0 characters";
  }
  if (reply && counter) { reply.addEventListener("input", count); count(); }
  const canned = document.getElementById("canned");
  if (canned && reply) canned.addEventListener("change", () => {
    if (canned.value) { reply.value = canned.value; count(); reply.focus(); canned.value = ""; }
  });
  if (page === "thread") document.getElementById("timeline")?.lastElementChild?.scrollIntoView({ block: "end" });
})();
