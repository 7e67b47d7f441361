// The big screen: folds the audit stream (/screen/events, Server-Sent
// Events, one event per audit record) into today's figures and draws them.
// It starts from the open tickets the gateway holds (/screen/open.json) and
// reads the log from today's first record, so a long log is not read again.
// A reconnect (the browser's own, with Last-Event-ID, or a new EventSource
// from the last seq + 1) continues from the record after the last one seen,
// which the gateway replays from audit: no gap, nothing twice.
// "Today" is the city's day (its time zone), as audit's KPIs count it, of
// the newest event seen: the workers' clock, which a demo runs faster.
"use strict";

const FINAL = new Set(["resolved", "closed", "merged", "transferred"]);
const STATE_AFTER = {
  ticket_merged: "merged", ticket_transferred: "transferred", ticket_dispatched: "dispatched",
  ticket_accepted: "accepted", ticket_returned: "returned", ticket_triaged: "triage",
  ticket_resolved: "resolved", ticket_reopened: "reopened", ticket_closed: "closed",
};
const COUNTED = { ticket_registered: "registered", ticket_dispatched: "dispatched",
                  ticket_resolved: "resolved", ticket_closed: "closed",
                  ticket_overdue: "overdue" };
const DAY_MS = 24 * 3600 * 1000;

const screen = {
  config: null, seq: 0, gaps: 0, reconnects: 0, live: false, records: 0,
  first: 1,        // the first record read: today's first, or the one after the snapshot
  snapshotSeq: 0,  // the open tickets of /screen/open.json are as records up to it left them
  tickets: new Map(), // id -> {district, state, urgency, category, registered_at, lat, lon, overdue}
  today: {},          // district -> {registered, dispatched, resolved, closed, overdue}
  channels: {}, categories: {}, units: [], day: "", now: 0, // the newest event's time
};
let dayFormat = null;
let source = null;
let dirty = true;

function dayOf(ms) { return dayFormat.format(new Date(ms)); }

function district(id) {
  if (!screen.today[id])
    screen.today[id] = { registered: 0, dispatched: 0, resolved: 0, closed: 0, overdue: 0 };
  return screen.today[id];
}

function apply(r) {
  if (r.seq > screen.snapshotSeq) applyToTicket(r);
  if (r.at > screen.now) {
    screen.now = r.at;
    const day = dayOf(r.at);
    if (day > screen.day) { // a new day: its counts start from zero
      screen.day = day; screen.today = {}; screen.channels = {}; screen.categories = {};
    }
  }
  if (dayOf(r.at) !== screen.day) return;
  const counted = COUNTED[r.event];
  if (counted) district(r.district || "_")[counted]++;
  if (r.event === "ticket_registered") {
    screen.channels[r.channel] = (screen.channels[r.channel] || 0) + 1;
    const c = r.category || "_";
    screen.categories[c] = (screen.categories[c] || 0) + 1;
  }
}

function applyToTicket(r) {
  // Events reach audit over several links: a dispatch may come before the
  // registration it follows, so a ticket's entry is made by whichever is first.
  let t = screen.tickets.get(r.ticket);
  // A ticket closed before the snapshot is not in it: only an event that
  // makes a state (a registration, a reopen, ...) brings it (back) in.
  if (!t && r.ticket && (r.event === "ticket_registered" || STATE_AFTER[r.event])) {
    t = { district: r.district, state: "registered", registered_at: r.at, overdue: false };
    screen.tickets.set(r.ticket, t);
  }
  if (r.event === "ticket_registered") {
    if (t && !t.registered) {
      Object.assign(t, { registered: true, urgency: r.urgency, category: r.category,
                         registered_at: r.registered_at || r.at, lat: r.lat, lon: r.lon });
      if (t.state === "registered" && r.state) t.state = r.state;
    }
  } else if (t) {
    if (STATE_AFTER[r.event] && !["merged", "transferred", "closed"].includes(t.state))
      t.state = STATE_AFTER[r.event];
    if (r.event === "ticket_overdue") t.overdue = true;
    if (FINAL.has(t.state)) t.overdue = false;
  }
}

function onRecord(e) {
  const r = JSON.parse(e.data);
  if (r.seq <= screen.seq) return;          // already applied
  if (r.seq !== screen.seq + 1) screen.gaps++;
  apply(r);
  screen.seq = r.seq;
  screen.records++;
  dirty = true;
}

function setLive(live) {
  screen.live = live;
  const el = document.getElementById("live");
  el.textContent = live ? "live" : "reconnecting";
  el.className = live ? "up" : "down";
}

function connect() {
  source = new EventSource("/screen/events?from=" + (screen.seq + 1));
  source.addEventListener("record", onRecord);
  source.onopen = () => setLive(true);
  source.onerror = () => {
    setLive(false);
    if (source.readyState === EventSource.CLOSED) {
      // The browser gave up: start again from the record after the last one seen.
      screen.reconnects++;
      setTimeout(connect, 1000);
    }
  };
}

function text(el, value) { if (el.textContent !== String(value)) el.textContent = value; }

function bars(container, entries, total, label) {
  const max = Math.max(1, ...entries.map(([, n]) => n));
  container.replaceChildren(...entries.map(([key, n]) => {
    const row = document.createElement("div");
    row.className = "bar";
    row.dataset.key = key;
    const share = total ? ` ${(100 * n / total).toFixed(1)}%` : "";
    row.innerHTML = `<span class="label"></span><span><div class="fill" style="width:${
      (100 * n / max).toFixed(1)}%"></div></span><span class="value">${n}${share}</span>`;
    row.querySelector(".label").textContent = label(key);
    return row;
  }));
}

function render() {
  if (!dirty) return;
  const now = screen.now || Date.now();
  text(document.getElementById("clock"), screen.day + " " + new Date(now).toLocaleTimeString(
    "en-GB", { timeZone: screen.config.timezone, hour: "2-digit", minute: "2-digit" }));
  dirty = false;
  text(document.getElementById("seq"), screen.seq);
  const open = {}, openOverdue = {}, urgent = [];
  for (const [id, t] of screen.tickets) {
    if (FINAL.has(t.state)) continue;
    open[t.district] = (open[t.district] || 0) + 1;
    if (t.overdue) openOverdue[t.district] = (openOverdue[t.district] || 0) + 1;
    if (t.urgency === "urgent") urgent.push([id, t]);
  }
  const rows = screen.config.districts.map(d => {
    const c = district(d.id);
    const tr = document.createElement("tr");
    tr.dataset.district = d.id;
    tr.innerHTML = `<td></td><td data-count="registered">${c.registered}</td>
      <td data-count="dispatched">${c.dispatched}</td><td data-count="resolved">${c.resolved}</td>
      <td data-count="closed">${c.closed}</td><td data-count="overdue" class="overdue">${
      c.overdue}</td><td data-count="open">${open[d.id] || 0}</td>
      <td data-count="open-overdue" class="overdue">${openOverdue[d.id] || 0}</td>`;
    tr.firstChild.textContent = d.name;
    return tr;
  });
  document.getElementById("districts").replaceChildren(...rows);
  const sum = (o) => Object.values(o).reduce((a, b) => a + b, 0);
  text(document.getElementById("total-registered"),
       Object.values(screen.today).reduce((a, c) => a + c.registered, 0));
  text(document.getElementById("total-open"), sum(open));
  text(document.getElementById("total-overdue"), sum(openOverdue));
  text(document.getElementById("total-urgent"), urgent.length);

  const registered = sum(screen.channels);
  bars(document.getElementById("channels"),
       Object.entries(screen.channels).sort((a, b) => b[1] - a[1]), registered, k => k);
  bars(document.getElementById("categories"),
       Object.entries(screen.categories).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
         .slice(0, 10), registered, k => screen.config.services[k] || k);

  urgent.sort((a, b) => a[1].registered_at - b[1].registered_at);
  document.getElementById("urgent").replaceChildren(...urgent.slice(0, 14).map(([id, t]) => {
    const left = t.registered_at + DAY_MS - now;
    const li = document.createElement("li");
    const h = Math.floor(Math.abs(left) / 3600000), m = Math.floor(Math.abs(left) / 60000) % 60;
    li.textContent = `${left >= 0 ? `${h} h ${m} min left` : `overdue by ${h} h ${m} min`} · ${
      t.district} · ${screen.config.services[t.category] || t.category} · ${id}`;
    if (left < 0) li.className = "late";
    return li;
  }));
  drawMap();
}

function drawMap() {
  const canvas = document.getElementById("map");
  const g = canvas.getContext("2d");
  g.clearRect(0, 0, canvas.width, canvas.height);
  const points = [];
  for (const t of screen.tickets.values())
    if (!FINAL.has(t.state) && typeof t.lat === "number") points.push(t);
  if (!points.length) return;
  let [s, n, w, e] = [90, -90, 180, -180];
  for (const p of points) {
    s = Math.min(s, p.lat); n = Math.max(n, p.lat); w = Math.min(w, p.lon); e = Math.max(e, p.lon);
  }
  const pad = 0.02, dx = Math.max(e - w, 0.01) + 2 * pad, dy = Math.max(n - s, 0.01) + 2 * pad;
  const scale = Math.min(canvas.width / (dx * Math.cos(((n + s) / 2) * Math.PI / 180)),
                         canvas.height / dy);
  const cos = Math.cos(((n + s) / 2) * Math.PI / 180);
  const left = (canvas.width - dx * scale * cos) / 2, top = (canvas.height - dy * scale) / 2;
  const colours = ["#4cc3ff", "#ffb547", "#47d18c", "#c78bff", "#ff7ab6", "#ffe066"];
  const index = new Map(screen.config.districts.map((d, i) => [d.id, i]));
  for (const p of points) {
    const x = left + (p.lon - w + pad) * scale * cos;
    const y = canvas.height - top - (p.lat - s + pad) * scale;
    g.fillStyle = p.overdue ? "#ff5d5d" : colours[(index.get(p.district) ?? 5) % colours.length];
    g.globalAlpha = 0.7;
    g.fillRect(x - 1.5, y - 1.5, 3, 3);
  }
  g.globalAlpha = 1;
}

async function refreshUnits() {
  try {
    const r = await fetch("/screen/kpi.json?by=unit&at=" + encodeURIComponent(screen.day));
    if (!r.ok) return;
    const body = await r.json();
    const rows = body.rows.filter(u => u.counts.dispatched > 0)
      .sort((a, b) => b.counts.dispatched - a.counts.dispatched).slice(0, 12);
    document.getElementById("units").replaceChildren(...rows.map(u => {
      const tr = document.createElement("tr");
      tr.innerHTML = `<td></td><td>${u.counts.dispatched}</td><td>${
        (100 * u.rates.response).toFixed(0)}%</td><td>${(100 * u.rates.on_time).toFixed(0)}%</td>`;
      tr.firstChild.textContent = u.key;
      return tr;
    }));
  } catch (e) { /* the next round tries again */ }
}

// For tests and the console: what the screen shows now.
window.screenState = () => ({
  seq: screen.seq, first: screen.first, gaps: screen.gaps, live: screen.live,
  reconnects: screen.reconnects, snapshot: screen.snapshotSeq,
  records: screen.records, day: screen.day, today: screen.today, channels: screen.channels,
});

async function start() {
  screen.config = await (await fetch("/screen/config.json")).json();
  dayFormat = new Intl.DateTimeFormat("en-CA", { timeZone: screen.config.timezone,
                                                 year: "numeric", month: "2-digit",
                                                 day: "2-digit" });
  screen.day = ""; // set by the first event
  document.getElementById("city").textContent = screen.config.city;
  for (const d of screen.config.districts) district(d.id);
  // The open tickets as the gateway holds them, then the log from today's
  // first record (or from the snapshot on, if that is earlier): not from seq 1.
  const snapshot = await (await fetch("/screen/open.json")).json();
  screen.snapshotSeq = snapshot.seq;
  for (const t of snapshot.tickets) screen.tickets.set(t.id, t);
  const today = screen.config.day_first_seq;
  screen.first = today ? Math.min(today, snapshot.seq + 1) : 1;
  screen.seq = screen.first - 1;
  connect();
  setInterval(render, 250);
  refreshUnits();
  setInterval(refreshUnits, 5000);
}
start();
