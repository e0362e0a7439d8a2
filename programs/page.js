// Draws the page model that eval/page.py embeds (and, live, serves as data.json). It only draws:
// every figure is built in Python, so the written page and the live view show the same thing.
"use strict";
const sliders = {};           // chart id -> selected value (kept across live updates)
let drawnVersion = null;
window.REPORT = { model: null, updates: 0, errors: [] };

function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function visibleFor(chart, value) {
  const key = chart.slider.key;
  return chart.data.map(t => (t.meta && t.meta[key] !== undefined) ? t.meta[key] === value : true);
}

function drawChart(chart) {
  let box = document.getElementById("box-" + chart.id);
  if (!box) {
    box = el("div", { id: "box-" + chart.id, class: "chart-box" });
    box.appendChild(el("div", { id: "chart-" + chart.id, class: "chart" }));
    if (chart.slider) {
      const row = el("div", { class: "slider" });
      row.appendChild(el("label", { for: "slider-" + chart.id }, chart.slider.label));
      const input = el("input", { type: "range", id: "slider-" + chart.id, min: "0", step: "1" });
      input.addEventListener("input", () => {
        const c = window.REPORT.model.charts.find(x => x.id === chart.id);
        sliders[chart.id] = c.slider.values[Number(input.value)];
        drawChart(c);
      });
      row.appendChild(input);
      row.appendChild(el("span", { id: "slider-value-" + chart.id }));
      box.appendChild(row);
    }
    document.getElementById("charts").appendChild(box);
  }
  const data = chart.data.map(t => Object.assign({}, t));
  if (chart.slider) {
    const values = chart.slider.values;
    const input = document.getElementById("slider-" + chart.id);
    const prev = sliders[chart.id];
    const wasLast = prev === undefined || input.dataset.last === String(prev);
    // Follow the newest step/year unless the reader moved the slider back.
    let value = (wasLast || !values.includes(prev)) ? values[values.length - 1] : prev;
    sliders[chart.id] = value;
    input.max = String(Math.max(0, values.length - 1));
    input.value = String(Math.max(0, values.indexOf(value)));
    input.dataset.last = String(values[values.length - 1]);
    input.disabled = values.length < 2;
    document.getElementById("slider-value-" + chart.id).textContent =
      values.length ? `${chart.slider.label} ${value} (of ${values[0]}–${values[values.length - 1]})` : "no data yet";
    const vis = visibleFor(chart, value);
    data.forEach((t, i) => { t.visible = vis[i]; });
  }
  Plotly.react("chart-" + chart.id, data, chart.layout, { responsive: true, displaylogo: false });
}

function drawTable(table) {
  let box = document.getElementById("table-" + table.id);
  if (!box) {
    box = el("div", { id: "table-" + table.id, class: "chart-box" });
    document.getElementById("tables").appendChild(box);
  }
  box.replaceChildren(el("h3", {}, table.title));
  const t = el("table");
  const head = el("tr");
  table.columns.forEach(c => head.appendChild(el("th", {}, c)));
  t.appendChild(head);
  table.rows.forEach(r => {
    const tr = el("tr");
    r.forEach(c => tr.appendChild(el("td", {}, c === null ? "" : String(c))));
    t.appendChild(tr);
  });
  box.appendChild(t);
}

function draw(model) {
  window.REPORT.model = model;
  const eng = document.getElementById("engine");
  eng.textContent = "Answered by: " + model.engine +
    (model.offline ? " — a deterministic stand-in, not a language model; these are not LLM results." : "");
  eng.className = "engine" + (model.offline ? " offline" : "");
  const facts = document.getElementById("facts");
  facts.replaceChildren(...(model.facts || []).map(f => el("li", {}, f)));
  const text = document.getElementById("text");
  if (model.text) { text.textContent = model.text; text.hidden = false; }
  model.charts.forEach(drawChart);
  (model.tables || []).forEach(drawTable);
  drawnVersion = model.version;
  window.REPORT.updates += 1;
  setStatus();
}

function setStatus(extra) {
  const m = window.REPORT.model;
  let s = m.status + (LIVE ? " · live view: following " + m.run_dir : "");
  if (extra) s += " · " + extra;
  document.getElementById("status").textContent = s;
}

async function poll() {
  try {
    const r = await fetch("data.json?have=" + encodeURIComponent(drawnVersion || ""), { cache: "no-store" });
    if (r.status === 200) {
      const model = await r.json();
      if (model.version !== drawnVersion) draw(model);
    }
    setStatus("checked " + new Date().toLocaleTimeString());
  } catch (e) {
    setStatus("viewer not reachable (" + e.message + ")");
  }
  setTimeout(poll, 1000);
}

draw(JSON.parse(document.getElementById("model").textContent));
if (LIVE) setTimeout(poll, 1000);
