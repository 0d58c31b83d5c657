// Eliot's dashboard: its pages follow the server's live feed (Server-Sent Events on
// /live). Every value is set as text, never as HTML: device ids come from devices.
"use strict";

// What each table last showed: a table is rebuilt only when its rows change, so that a
// button is not replaced under the pointer.
const shown = { devices: "", noisiest: "", alerts: "" };

function changed(table, rows) {
  const text = JSON.stringify(rows);
  if (shown[table] === text) {
    return false;
  }
  shown[table] = text;
  return true;
}

function setText(id, value) {
  const element = document.getElementById(id);
  if (element !== null) {
    element.textContent = value === null || value === undefined ? "—" : String(value);
  }
}

function cell(row, content, wide) {
  const td = document.createElement("td");
  if (wide) {
    td.className = "wide";
  }
  if (content instanceof Node) {
    td.appendChild(content);
  } else {
    td.textContent = content === null || content === undefined ? "—" : String(content);
  }
  row.appendChild(td);
}

function deviceLink(id) {
  const link = document.createElement("a");
  link.href = `/fleet/devices/${encodeURIComponent(id)}`;
  link.textContent = id;
  return link;
}

function renderNoisiest(fleet) {
  const body = document.getElementById("noisiest");
  if (body === null || !changed("noisiest", fleet.noisiest)) {
    return;
  }
  const rows = document.createDocumentFragment();
  for (const d of fleet.noisiest) {
    const row = document.createElement("tr");
    row.dataset.noisy = d.device_id;
    cell(row, deviceLink(d.device_id));
    cell(row, d.messages);
    cell(row, d.readings, true);
    cell(row, d.dead_letters);
    rows.appendChild(row);
  }
  body.replaceChildren(rows);
}

function renderFleet(fleet) {
  setText("total", fleet.total);
  for (const [status, n] of fleet.statuses) {
    const figure = document.querySelector(`[data-status="${status}"]`);
    if (figure !== null) {
      figure.textContent = String(n);
    }
  }
  setText("rate", fleet.ingest_rate);
  setText("dead_letters", fleet.dead_letters);
  setText("store", fleet.store);
  const body = document.getElementById("devices");
  if (body === null || !changed("devices", fleet.devices)) {
    return;
  }
  const rows = document.createDocumentFragment();
  for (const d of fleet.devices) {
    const row = document.createElement("tr");
    row.dataset.device = d.device_id;
    cell(row, deviceLink(d.device_id));
    cell(row, d.status);
    cell(row, d.last_seen);
    cell(row, d.readings, true);
    cell(row, d.dead_letters, true);
    rows.appendChild(row);
  }
  body.replaceChildren(rows);
}

// The acknowledge form of a firing alert, as the server renders it.
function ackForm(alert, csrf) {
  const form = document.createElement("form");
  form.method = "post";
  form.action = "/alerts/ack";
  for (const [name, value] of [["rule", alert.rule], ["device_id", alert.device_id], ["csrf", csrf]]) {
    const input = document.createElement("input");
    input.type = "hidden";
    input.name = name;
    input.value = value;
    form.appendChild(input);
  }
  const button = document.createElement("button");
  button.type = "submit";
  button.textContent = "Acknowledge";
  form.appendChild(button);
  return form;
}

function renderAlerts(fleet) {
  const body = document.getElementById("alerts");
  if (body === null || !changed("alerts", fleet.alerts)) {
    return;
  }
  // Present when the viewer may acknowledge (its CSRF token; empty without login).
  const csrf = body.closest("main").dataset.csrf;
  const rows = document.createDocumentFragment();
  for (const a of fleet.alerts) {
    const row = document.createElement("tr");
    row.dataset.alert = `${a.rule}/${a.device_id}`;
    cell(row, a.rule);
    cell(row, deviceLink(a.device_id));
    cell(row, a.state);
    cell(row, a.since, true);
    cell(row, a.value, true);
    cell(row, a.acknowledged ? "acknowledged" : "no");
    const may = csrf !== undefined && a.state === "firing" && !a.acknowledged;
    cell(row, may ? ackForm(a, csrf) : "");
    rows.appendChild(row);
  }
  body.replaceChildren(rows);
}

// The page's live feed, named by the header's `#live` (`data-feed`): `fleet` events on
// the fleet and alerts pages, `device` events on a device's (device.js renders them).
function follow() {
  const live = document.getElementById("live");
  if (live === null) {
    return; // not a live page
  }
  const source = new EventSource(live.dataset.feed);
  source.addEventListener("fleet", (event) => {
    live.textContent = "live";
    const fleet = JSON.parse(event.data);
    setText("firing", fleet.firing);
    setText("updated", fleet.at);
    renderFleet(fleet);
    renderNoisiest(fleet);
    renderAlerts(fleet);
  });
  source.addEventListener("device", (event) => {
    live.textContent = "live";
    if (typeof renderDevice === "function") {
      renderDevice(JSON.parse(event.data));
    }
  });
  // The browser reconnects by itself; say so meanwhile.
  source.addEventListener("error", () => {
    live.textContent = "reconnecting";
  });
}

document.addEventListener("DOMContentLoaded", follow);
