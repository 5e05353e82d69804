// The board page: the live board from /api/stream (server-sent events), the patient page
// from POST /api/patient, actions through POST /api/actions with the session's CSRF token.
// Text from the feed is only ever set as text, never as markup. Patient ids travel in
// request bodies, never in a URL.
"use strict";

let session = null;
let openPatient = null;
let lastBoard = { cards: [] };
let feedDownSince = null;
// Patients whose details are open: they stay open when the board is redrawn.
const openDetails = new Set();

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

// Every time is shown in the hospital's time zone ([board] time_zone), on a 24-hour
// clock, and every age against the same clock: now.
let clockFormat = null;

function time(rfc3339) {
  const d = new Date(rfc3339);
  if (isNaN(d)) return rfc3339;
  if (!clockFormat) {
    clockFormat = new Intl.DateTimeFormat("en-GB", {
      timeZone: (session && session.time_zone) || "UTC",
      day: "2-digit", month: "short", hour: "2-digit", minute: "2-digit", hourCycle: "h23",
    });
  }
  return clockFormat.format(d);
}

function minutes(n) {
  if (n < 60) return `${n} min`;
  const h = Math.floor(n / 60);
  if (h < 48) return `${h} h ${n % 60} min`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}

// How long ago an instant was, on the browser's clock (the same wall clock as the server's).
function ago(rfc3339) {
  const d = new Date(rfc3339);
  if (isNaN(d)) return "";
  const n = Math.max(0, Math.round((Date.now() - d.getTime()) / 60000));
  return n === 0 ? "just now" : `${minutes(n)} ago`;
}

// Clinical names for what the feed and the rules call by code.
const RULES = {
  news2: "NEWS2", mews: "MEWS", qsofa: "qSOFA", sirs: "SIRS", sofa: "SOFA",
  septic_shock: "Septic shock", risk: "Vigil Risk",
};
const PARAMS = {
  heart_rate: "HR", resp_rate: "RR", sbp: "SBP", dbp: "DBP", map: "MAP",
  temperature: "Temp", spo2: "SpO2", on_oxygen: "Oxygen", o2_flow: "O2 flow",
  fio2: "FiO2", spo2_scale: "SpO2 scale", gcs: "GCS", consciousness: "ACVPU",
  wbc: "WBC", bands: "Bands", lactate: "Lactate", creatinine: "Creatinine",
  bilirubin: "Bilirubin", platelets: "Platelets", pao2: "PaO2", paco2: "PaCO2",
  urine_output: "Urine output", inr: "INR", norepinephrine: "Norepinephrine",
  epinephrine: "Epinephrine", dopamine: "Dopamine", dobutamine: "Dobutamine",
  ventilation: "Ventilated",
};
const UNITS = {
  "mm[Hg]": "mmHg", "Cel": "°C", "[degF]": "°F", "%": "%", "/min": "/min",
  "10*9/L": "×10⁹/L", "10*3/uL": "×10³/µL", "umol/L": "µmol/L", "ug/kg/min": "µg/kg/min",
  "mL/(24.h)": "mL/24 h", "L/min": "L/min", "mmol/L": "mmol/L", "mg/dL": "mg/dL",
  "kPa": "kPa", "1": "", "{score}": "", "ACVPU": "", "boolean": "",
};

function ruleName(rule) {
  return RULES[rule] || rule;
}

// One reading as a clinician writes it: "RR 26 /min", "on oxygen", "ACVPU C".
function reading(k) {
  const name = PARAMS[k.code] || k.code || "?";
  if (k.code === "on_oxygen" || k.value === true || k.value === false) {
    if (k.code === "on_oxygen") return k.value ? "on oxygen" : "on room air";
    return `${name} ${k.value ? "yes" : "no"}`;
  }
  const unit = k.unit !== undefined && k.unit !== null ? (k.unit in UNITS ? UNITS[k.unit] : k.unit) : "";
  const value = k.value !== undefined && k.value !== null ? k.value : "";
  return `${name} ${value}${unit ? (unit === "%" || unit.startsWith("°") ? unit : ` ${unit}`) : ""}`;
}

function score(a) {
  if (a.score === null || a.score === undefined) return "";
  return a.rule === "risk" ? ` ${a.score} %` : ` ${a.score}`;
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

// The scores of the last 24 hours, one line (and a dot per score) a rule, with the hours
// marked: -24 h at the left, now at the right.
function trend(points) {
  const svgNs = "http://www.w3.org/2000/svg";
  const W = 360, H = 90, L = 30, R = 8, T = 8, B = 18;
  const svg = document.createElementNS(svgNs, "svg");
  svg.setAttribute("class", "trend");
  svg.setAttribute("width", String(W));
  svg.setAttribute("height", String(H));
  svg.setAttribute("role", "img");
  const x = (ago) => L + (W - L - R) * (1440 - Math.min(1440, ago)) / 1440;
  const max = Math.max(1, ...points.flatMap((t) => t.points.map((p) => p[1])));
  const y = (v) => T + (H - T - B) * (1 - v / max);
  const text = (tx, ty, anchor, content) => {
    const t = document.createElementNS(svgNs, "text");
    t.setAttribute("x", String(tx)); t.setAttribute("y", String(ty));
    t.setAttribute("text-anchor", anchor); t.setAttribute("class", "axis");
    t.textContent = content;
    return t;
  };
  const axis = document.createElementNS(svgNs, "polyline");
  axis.setAttribute("class", "axis");
  axis.setAttribute("points", `${L},${T} ${L},${H - B} ${W - R},${H - B}`);
  svg.append(axis);
  for (const [h, label] of [[24, "-24 h"], [12, "-12 h"], [0, "now"]]) {
    svg.append(text(x(h * 60), H - 4, h === 0 ? "end" : (h === 24 ? "start" : "middle"), label));
  }
  svg.append(text(L - 4, T + 8, "end", String(max)), text(L - 4, H - B, "end", "0"));
  const labels = [];
  points.forEach((t, i) => {
    const pts = t.points.slice().sort((p, q) => q[0] - p[0]);
    const line = document.createElementNS(svgNs, "polyline");
    line.setAttribute("class", `s${i % 6}`);
    line.setAttribute("points", pts.map(([a, v]) => `${x(a).toFixed(1)},${y(v).toFixed(1)}`).join(" "));
    svg.append(line);
    for (const [a, v] of pts) {
      const dot = document.createElementNS(svgNs, "circle");
      dot.setAttribute("class", `s${i % 6}`);
      dot.setAttribute("cx", x(a).toFixed(1));
      dot.setAttribute("cy", y(v).toFixed(1));
      dot.setAttribute("r", "3");
      svg.append(dot);
    }
    labels.push(`${ruleName(t.rule)} ${pts.map((p) => p[1]).join(" → ")}`);
  });
  svg.setAttribute("aria-label", `Scores over 24 hours: ${labels.join("; ")}`);
  const title = document.createElementNS(svgNs, "title");
  title.textContent = labels.join("; ");
  svg.append(title);
  const legend = el("div", { class: "legend" }, ...points.map((t, i) =>
    el("span", { class: `key s${i % 6}` }, ruleName(t.rule))));
  return el("div", { class: "trend-box" }, svg, legend);
}

// One compact row a patient: bed, patient, level in words and colour, what fired with
// its score, how long it has waited, owner and tier; the details open on demand.
function card(c, silent) {
  const fired = c.alerts.map((a) => `${ruleName(a.rule)}${score(a)}`).join(" · ");
  const row = el("div", { class: "row" },
    el("span", { class: `badge level-${c.level}` }, c.level_text),
    el("span", { class: "bed" }, c.location || "location unknown"),
    el("span", { class: "who" }, c.patient_id),
    el("span", { class: "fired" }, fired),
    el("span", { class: "waiting", title: "since the alert was published" }, `waiting ${minutes(c.waiting_minutes)}`),
    el("span", { class: "owner" }, c.owner ? `owner ${c.owner}` : "not accepted"),
    c.tier > 0 ? el("span", { class: "escalated" }, `tier ${c.tier}`) : null,
    c.escalation_due ? el("span", { class: "due" }, "ESCALATION DUE") : null,
    c.watch_until ? el("span", { class: "watched" }, `watched until ${time(c.watch_until)}`) : null,
    silent ? el("span", { class: "silent" }, "SILENT RUN-IN: nobody was paged") : null);
  const actions = el("span", { class: "card-actions" });
  if (!silent && may("accept") && c.owner !== session.user) {
    const b = el("button", { type: "button", class: "accept" }, c.owner ? "Take over" : "Accept");
    b.addEventListener("click", () => act(c.patient_id, "accept"));
    actions.append(b);
  }
  const open = el("button", { type: "button", class: "open" }, "Patient page");
  open.addEventListener("click", () => loadPatient(c.patient_id));
  const shown = openDetails.has(c.patient_id);
  const more = el("button", { type: "button", class: "more", "aria-expanded": String(shown) },
    shown ? "Hide details" : "Details");
  actions.append(open, more);
  row.append(actions);
  const alerts = el("ul", { class: "alerts" });
  for (const a of c.alerts) {
    const readings = (a.criteria || []).map((k) =>
      `${reading(k)}${k.effective ? ` (taken ${time(k.effective)}, ${ago(k.effective)})` : ""}`);
    alerts.append(el("li", { class: "alert" },
      el("strong", {}, `${ruleName(a.rule)}${score(a)}`), ` ${a.level}: `, a.message,
      a.changed ? el("span", { class: "changed" }, ` [${a.changed}]`) : null,
      readings.length ? el("div", { class: "criteria" }, `Fired on: ${readings.join("; ")}`) : null,
      a.overdue.length ? el("div", { class: "overdue" },
        `Overdue, re-measure: ${a.overdue.map((o) => PARAMS[o] || o).join(", ")}`) : null,
      el("div", { class: "criteria" }, `First raised ${time(a.first_raised_at)} (${ago(a.first_raised_at)})`)));
  }
  const details = el("div", { class: "details" }, alerts, trend(c.trend));
  details.hidden = !shown;
  more.addEventListener("click", () => {
    const now = details.hidden;
    details.hidden = !now;
    if (now) openDetails.add(c.patient_id); else openDetails.delete(c.patient_id);
    more.textContent = now ? "Hide details" : "Details";
    more.setAttribute("aria-expanded", String(now));
  });
  return el("article", { class: `card level-${c.level}`, "data-patient": c.patient_id }, row, details);
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
    const name = (session.ward_names && session.ward_names[ward]) || ward;
    const section = el("section", { class: "ward" }, el("h2", {}, `${name} (${cards.length})`));
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
    const what = `${ruleName(h.rule)} ${h.kind} ${h.level}${h.suppressed ? " (suppressed)" : ""}${h.silent ? " (silent)" : ""}`;
    const values = (h.criteria || []).map((k) => `${reading(k)}${k.effective ? ` taken ${time(k.effective)}` : ""}`).join("; ");
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
  document.getElementById("zone").textContent = `times: ${session.time_zone}, 24 h`;
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
