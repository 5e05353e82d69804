// The board page: the live board from /api/stream (server-sent events), the patient page
// from POST /api/patient, actions through POST /api/actions with the session's CSRF token.
// Text from the feed is only ever set as text, never as markup. Patient ids travel in
// request bodies, never in a URL.
"use strict";

let session = null;
let openPatient = null;
let lastBoard = { cards: [] };
let feedDownSince = null;

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else e.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(typeof c === "string" || typeof c === "number" ? String(c) : c);
  }
  return e;
}

function show(text) {
  const m = document.getElementById("message");
  m.textContent = text;
  m.hidden = !text;
}

function time(rfc3339) {
  const d = new Date(rfc3339);
  return isNaN(d) ? rfc3339 : d.toLocaleString();
}

function minutes(n) {
  if (n < 60) return `${n} min`;
  return `${Math.floor(n / 60)} h ${n % 60} min`;
}

function may(kind) {
  return session && session.may.includes(kind);
}

async function act(patientId, kind, extra) {
  const body = Object.assign({ patient_id: patientId, kind }, extra || {});
  const r = await fetch("/api/actions", {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "x-csrf-token": session.csrf },
    body: JSON.stringify(body),
  });
  const text = await r.text();
  show(r.status === 202 ? `${kind}: recorded` : `${kind} refused: ${text}`);
  return r.status;
}

function trend(points) {
  const svgNs = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(svgNs, "svg");
  svg.setAttribute("class", "trend");
  svg.setAttribute("width", "160");
  svg.setAttribute("height", "36");
  svg.setAttribute("role", "img");
  const labels = [];
  points.forEach((t, i) => {
    const max = Math.max(1, ...t.points.map((p) => p[1]));
    const line = document.createElementNS(svgNs, "polyline");
    line.setAttribute("class", `s${i % 6}`);
    line.setAttribute("points", t.points
      .map(([ago, score]) => `${(4 + 152 * (1440 - ago) / 1440).toFixed(1)},${(34 - 32 * score / max).toFixed(1)}`)
      .join(" "));
    svg.append(line);
    for (const [ago, score] of t.points) {
      const dot = document.createElementNS(svgNs, "circle");
      dot.setAttribute("class", `s${i % 6}`);
      dot.setAttribute("cx", (4 + 152 * (1440 - ago) / 1440).toFixed(1));
      dot.setAttribute("cy", (34 - 32 * score / max).toFixed(1));
      dot.setAttribute("r", "2");
      svg.append(dot);
    }
    labels.push(`${t.rule} ${t.points.map((p) => p[1]).join(" → ")}`);
  });
  svg.setAttribute("aria-label", `Scores over 24 hours: ${labels.join("; ")}`);
  const title = document.createElementNS(svgNs, "title");
  title.textContent = labels.join("; ");
  svg.append(title);
  return svg;
}

function card(c, silent) {
  const head = el("div", { class: "card-head" },
    el("span", { class: `badge level-${c.level}` }, c.level_text),
    el("span", { class: "who" }, c.patient_id),
    el("span", {}, c.location || "location unknown"),
    el("span", { class: "waiting" }, `waiting ${minutes(c.waiting_minutes)}`),
    el("span", { class: "owner" }, c.owner ? `owned by ${c.owner}` : "not accepted"),
    c.tier > 0 ? el("span", { class: "escalated" }, `escalated to tier ${c.tier}`) : null,
    c.escalation_due ? el("span", { class: "due" }, "ESCALATION DUE") : null,
    c.watch_until ? el("span", {}, `watched until ${time(c.watch_until)}`) : null);
  const alerts = el("ul", { class: "alerts" });
  for (const a of c.alerts) {
    const criteria = (a.criteria || []).map((k) => {
      const value = k.value !== undefined ? k.value : "";
      const unit = k.unit ? ` ${k.unit}` : "";
      const at = k.effective ? ` at ${time(k.effective)}` : "";
      return `${k.code || "?"} ${value}${unit}${at}${k.criterion ? ` (${k.criterion})` : ""}`;
    }).join("; ");
    alerts.append(el("li", { class: "alert" },
      el("strong", {}, `${a.rule} `), `${a.level}${a.score !== null ? ` (score ${a.score})` : ""}: `,
      a.message,
      a.changed ? el("span", { class: "changed" }, ` [${a.changed}]`) : null,
      criteria ? el("div", { class: "criteria" }, `Fired on: ${criteria}`) : null,
      a.overdue.length ? el("div", { class: "overdue" }, `Overdue, re-measure: ${a.overdue.join(", ")}`) : null,
      el("div", { class: "criteria" }, `First raised ${time(a.first_raised_at)}`)));
  }
  const actions = el("div", { class: "card-actions" });
  if (silent) {
    head.append(el("span", { class: "silent" }, "SILENT RUN-IN: nobody was paged"));
  } else if (may("accept") && c.owner !== session.user) {
    const b = el("button", { type: "button", class: "accept" }, c.owner ? "Take over" : "Accept");
    b.addEventListener("click", () => act(c.patient_id, "accept"));
    actions.append(b);
  }
  const open = el("button", { type: "button", class: "open" }, "Patient page");
  open.addEventListener("click", () => loadPatient(c.patient_id));
  actions.append(open);
  const chart = el("div", { class: "trend-box" }, trend(c.trend),
    el("span", { class: "criteria" }, " scores, last 24 h"));
  return el("article", { class: `card level-${c.level}`, "data-patient": c.patient_id },
    head, alerts, chart, actions);
}

function render(b) {
  lastBoard = b;
  const main = document.getElementById("board");
  main.replaceChildren();
  if (!b.cards.length) {
    main.append(el("p", { class: "empty" }, "No active alerts."));
  }
  const wards = new Map();
  for (const c of b.cards) {
    if (!wards.has(c.ward)) wards.set(c.ward, []);
    wards.get(c.ward).push(c);
  }
  for (const [ward, cards] of [...wards.entries()].sort((x, y) => x[0].localeCompare(y[0]))) {
    const section = el("section", { class: "ward" }, el("h2", {}, `Ward ${ward} (${cards.length})`));
    for (const c of cards) section.append(card(c, false));
    main.append(section);
  }
  // Quality staff also receive a run-in's silent alerts: shown apart, never actionable.
  if (b.silent && b.silent.length) {
    const section = el("section", { class: "ward silent-run" },
      el("h2", {}, `Silent run-in: ${b.silent.length} (not paged)`));
    for (const c of b.silent) section.append(card(c, true));
    main.append(section);
  }
}

function describe(h) {
  if (h.type === "alert") {
    const what = `${h.rule} ${h.kind} ${h.level}${h.suppressed ? " (suppressed)" : ""}${h.silent ? " (silent)" : ""}`;
    const values = (h.criteria || []).map((k) => `${k.code || "?"} ${k.value ?? ""}${k.unit ? " " + k.unit : ""}`).join("; ");
    return [what, `${h.message}${values ? ` | ${values}` : ""}${h.overdue.length ? ` | overdue: ${h.overdue.join(", ")}` : ""}`];
  }
  const detail = h.reason || (h.minutes ? `${h.minutes} minutes` : "") || h.text || "";
  return [`${h.kind} by ${h.user} (${h.role})`, detail];
}

async function loadPatient(patientId) {
  openPatient = patientId;
  const r = await fetch("/api/patient", {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ patient_id: patientId }),
  });
  if (!r.ok) { show(await r.text()); return; }
  const p = await r.json();
  document.getElementById("patient").hidden = false;
  document.getElementById("patient-title").textContent = `${p.patient_id}, ${p.location || "location unknown"}`;
  const state = [p.level ? `level ${p.level}` : "no active alert",
    p.owner ? `owned by ${p.owner}` : "not accepted",
    p.tier ? `escalated to tier ${p.tier}` : null,
    p.dismissed ? `dismissed: ${p.dismissed}` : null,
    p.stopped ? "alerts stopped for this encounter" : null,
    p.encounter_id ? `encounter ${p.encounter_id}` : null].filter(Boolean).join(" · ");
  document.getElementById("patient-state").textContent = state;
  const rows = p.history.slice().reverse().map((h) => {
    const [what, detail] = describe(h);
    return el("tr", { class: `${h.type}${h.suppressed ? " suppressed" : ""}` },
      el("td", {}, time(h.at)), el("td", {}, what), el("td", {}, detail));
  });
  document.querySelector("#history tbody").replaceChildren(...rows);
  for (const [id, kind] of [["act-dismiss", "dismiss"], ["act-watch", "watch"], ["act-note", "note"],
    ["act-escalate", "escalate"], ["act-stop", "stop"]]) {
    document.getElementById(id).hidden = !may(kind);
  }
}

async function start() {
  const r = await fetch("/api/session", { credentials: "same-origin" });
  if (r.status === 401) { window.location.assign("/login"); return; }
  session = await r.json();
  document.getElementById("who").textContent = `${session.user} (${session.role.replace("_", " ")})`;
  const reasons = document.getElementById("dismiss-reason");
  reasons.replaceChildren(...session.dismiss_reasons.map((x) => el("option", { value: x }, x)));
  document.getElementById("watch-minutes").max = String(session.max_watch_minutes);

  document.getElementById("logout").addEventListener("click", async () => {
    await fetch("/logout", { method: "POST", credentials: "same-origin", headers: { "x-csrf-token": session.csrf } });
    window.location.assign("/login");
  });
  document.getElementById("patient-close").addEventListener("click", () => {
    openPatient = null;
    document.getElementById("patient").hidden = true;
  });
  const on = (id, kind, extra) => document.getElementById(id).addEventListener(
    id.startsWith("act-") && document.getElementById(id).tagName === "FORM" ? "submit" : "click",
    async (e) => { e.preventDefault(); if (openPatient) { await act(openPatient, kind, extra()); } });
  on("act-dismiss", "dismiss", () => ({ reason: reasons.value }));
  on("act-watch", "watch", () => ({ minutes: Number(document.getElementById("watch-minutes").value) }));
  on("act-note", "note", () => ({ text: document.getElementById("note-text").value }));
  on("act-escalate", "escalate", () => ({}));
  on("act-stop", "stop", () => ({}));

  const live = document.getElementById("live");
  const events = new EventSource("/api/stream");
  events.addEventListener("board", (e) => {
    const b = JSON.parse(e.data);
    // Never an "all clear" the board cannot vouch for: say when alerts are not arriving.
    const feed = document.getElementById("feed");
    if (b.feed === "live") {
      live.textContent = "live";
      live.className = "live on";
      feed.hidden = true;
      feedDownSince = null;
    } else {
      if (!feedDownSince) feedDownSince = new Date();
      live.textContent = b.feed === "connecting" ? "connecting to Kafka" : "Kafka unreachable";
      live.className = "live off";
      feed.textContent = b.feed === "connecting"
        ? "Still reading the alert topic: the board is not complete yet."
        : `Not receiving alerts since ${feedDownSince.toLocaleTimeString()}: Kafka cannot be reached, and this board may be out of date. Do not take an empty board as all clear.`;
      if (feed.hidden) feed.hidden = false;
    }
    render(b);
    if (openPatient) loadPatient(openPatient);
  });
  events.addEventListener("error", () => {
    live.textContent = "disconnected: reconnecting; the board may be out of date";
    live.className = "live off";
  });
}

start();
