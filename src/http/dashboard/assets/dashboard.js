// Eliot's dashboard: the fleet page follows the server's live feed (Server-Sent Events on
// /live). Every value is set as text, never as HTML: device ids come from devices.
"use strict";

function cell(row, text) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "—" : String(text);
  row.appendChild(td);
}

function render(fleet) {
  document.getElementById("total").textContent = String(fleet.total);
  for (const [status, n] of fleet.statuses) {
    const figure = document.querySelector(`[data-status="${status}"]`);
    if (figure !== null) {
      figure.textContent = String(n);
    }
  }
  document.getElementById("firing").textContent = String(fleet.firing);
  document.getElementById("rate").textContent = String(fleet.ingest_rate);
  document.getElementById("dead_letters").textContent = String(fleet.dead_letters);
  document.getElementById("store").textContent = fleet.store;
  document.getElementById("updated").textContent = fleet.at;
  const body = document.getElementById("devices");
  const rows = document.createDocumentFragment();
  for (const d of fleet.devices) {
    const row = document.createElement("tr");
    row.dataset.device = d.device_id;
    cell(row, d.device_id);
    cell(row, d.status);
    cell(row, d.last_seen);
    cell(row, d.readings);
    cell(row, d.dead_letters);
    rows.appendChild(row);
  }
  body.replaceChildren(rows);
}

function follow() {
  const live = document.getElementById("live");
  if (live === null) {
    return; // not a live page (the login)
  }
  const source = new EventSource("/live");
  source.addEventListener("fleet", (event) => {
    live.textContent = "live";
    render(JSON.parse(event.data));
  });
  // The browser reconnects by itself; say so meanwhile.
  source.addEventListener("error", () => {
    live.textContent = "reconnecting";
  });
}

document.addEventListener("DOMContentLoaded", follow);
