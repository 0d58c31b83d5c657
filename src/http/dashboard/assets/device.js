// Eliot's device page: a chart per sensor type (uPlot, vendored), a line per numeric
// field of the readings' data, and the last readings, from the device's live feed
// (/live/devices/{id}, followed by dashboard.js, which calls renderDevice). Everything a
// device sent is set as text, never as HTML; what it can make the page keep is bounded.
"use strict";

const CHARTED_POINTS = 1000; // a chart keeps its newest points (the page says so too)
const MAX_CHARTS = 8; // sensor types charted; past them, listed only
const MAX_FIELDS = 8; // lines per chart
const MAX_DEPTH = 4; // how deep into `data` numeric fields are looked for
const LAST_READINGS = 20;
const SHOWN_DATA = 200; // characters of a reading's data in the table

// Lines told apart without colour: each its own dash, and named in the legend.
const DASHES = [[], [8, 4], [2, 3], [12, 3, 2, 3], [4, 4], [1, 6], [16, 6], [6, 2, 2, 2]];
const COLOURS = ["#1b5e20", "#0d47a1", "#b71c1c", "#4a148c", "#e65100", "#006064", "#3e2723", "#263238"];

// Sensor type → { figure, times, fields: Map(path → values), plot }.
const charts = new Map();

// The numeric leaves of `value`, as [path, number], depth-first, `MAX_FIELDS` at most.
function numericFields(value, path, depth, out) {
  if (out.length >= MAX_FIELDS) {
    return out;
  }
  if (typeof value === "number" && Number.isFinite(value)) {
    out.push([path, value]);
  } else if (value !== null && typeof value === "object" && !Array.isArray(value) && depth < MAX_DEPTH) {
    for (const [key, inner] of Object.entries(value)) {
      numericFields(inner, path === "" ? key : `${path}.${key}`, depth + 1, out);
    }
  }
  return out;
}

function chartOf(sensorType) {
  let chart = charts.get(sensorType);
  if (chart === undefined) {
    if (charts.size >= MAX_CHARTS) {
      return null;
    }
    const figure = document.createElement("figure");
    figure.className = "chart";
    figure.dataset.sensorType = sensorType;
    figure.dataset.points = "0";
    const caption = document.createElement("figcaption");
    caption.textContent = sensorType;
    figure.appendChild(caption);
    document.getElementById("charts").appendChild(figure);
    chart = { figure, times: [], fields: new Map(), plot: null };
    charts.set(sensorType, chart);
  }
  return chart;
}

function addPoint(chart, time, fields) {
  for (const [path] of fields) {
    if (!chart.fields.has(path) && chart.fields.size < MAX_FIELDS) {
      chart.fields.set(path, new Array(chart.times.length).fill(null));
      // A new line: the chart is drawn anew with it.
      if (chart.plot !== null) {
        chart.plot.destroy();
        chart.plot = null;
      }
    }
  }
  const byPath = new Map(fields);
  chart.times.push(time);
  for (const [path, values] of chart.fields) {
    values.push(byPath.has(path) ? byPath.get(path) : null);
  }
  if (chart.times.length > CHARTED_POINTS) {
    chart.times.shift();
    for (const values of chart.fields.values()) {
      values.shift();
    }
  }
}

function widthOf(figure) {
  return Math.max(240, figure.clientWidth);
}

function draw(chart) {
  const data = [chart.times, ...chart.fields.values()];
  if (chart.plot === null) {
    const lines = [...chart.fields.keys()].map((path, i) => ({
      label: path,
      stroke: COLOURS[i % COLOURS.length],
      dash: DASHES[i % DASHES.length],
      width: 2,
      spanGaps: true,
    }));
    const options = { width: widthOf(chart.figure), height: 220, series: [{ label: "time" }, ...lines] };
    chart.plot = new uPlot(options, data, chart.figure);
  } else {
    chart.plot.setData(data);
  }
  chart.figure.dataset.points = String(chart.times.length);
}

function readingRow(reading) {
  const row = document.createElement("tr");
  let data = reading.data === null ? `(${reading.bytes} bytes: too large to show here)` : JSON.stringify(reading.data);
  if (data.length > SHOWN_DATA) {
    data = `${data.slice(0, SHOWN_DATA)}…`;
  }
  for (const text of [reading.timestamp, reading.sensor_type, data]) {
    const td = document.createElement("td");
    td.textContent = text;
    row.appendChild(td);
  }
  return row;
}

// One `device` event: its facts, and its readings newer than the last event's, oldest
// first.
function renderDevice(event) {
  if (event.facts !== null) {
    for (const [name, value] of Object.entries(event.facts)) {
      const fact = document.querySelector(`[data-fact="${name}"]`);
      if (fact !== null) {
        fact.textContent = value;
      }
    }
  }
  const touched = new Set();
  const table = document.getElementById("readings");
  for (const reading of event.readings) {
    table.prepend(readingRow(reading));
    const time = Date.parse(reading.timestamp) / 1000;
    const fields = reading.data === null ? [] : numericFields(reading.data, "", 0, []);
    const chart = Number.isFinite(time) && fields.length > 0 ? chartOf(reading.sensor_type) : null;
    if (chart !== null) {
      addPoint(chart, time, fields);
      touched.add(chart);
    }
  }
  while (table.rows.length > LAST_READINGS) {
    table.deleteRow(-1);
  }
  for (const chart of touched) {
    draw(chart);
  }
  if (event.error !== null) {
    document.getElementById("live").textContent = `readings not read: ${event.error}`;
  }
}

// Charts follow the page's width.
window.addEventListener("resize", () => {
  for (const chart of charts.values()) {
    if (chart.plot !== null) {
      chart.plot.setSize({ width: widthOf(chart.figure), height: 220 });
    }
  }
});
