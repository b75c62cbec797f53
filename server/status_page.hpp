// The status page served at GET / : plain HTML and JavaScript compiled into the binary.
//
// HOW IT WORKS
//   The page fetches /stats (the sampler's history: one sample per table per second) and then
//   follows /stats/stream (Server-Sent Events, one `stats` event per sample). For each table
//   it shows episodes, ingest rate, index progress (indexed / hot) and pressure, and draws on
//   a <canvas> the episodes over time (one line per table, solid) and the ingest rate (dashed).
//   A token given to the page as ?token=… is passed on to both requests.
#pragma once

namespace engram::server {

inline const char* status_page_html() {
    return R"HTML(<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Engram status</title>
<style>
 body { font-family: sans-serif; margin: 16px; background: #fff; color: #222; }
 h1 { font-size: 20px; margin: 0 0 8px; }
 table { border-collapse: collapse; margin-top: 8px; }
 td, th { border: 1px solid #ccc; padding: 3px 8px; text-align: right; font-size: 13px; }
 th:first-child, td:first-child { text-align: left; }
 #status { font-size: 12px; color: #666; }
 .bar { display: inline-block; width: 80px; height: 8px; background: #eee; }
 .bar span { display: block; height: 8px; background: #2ca02c; }
</style></head>
<body>
<h1>Engram</h1>
<div id="status">connecting…</div>
<canvas id="chart" width="760" height="300"></canvas>
<table id="tables"><thead><tr><th>table</th><th>episodes</th><th>ingest/s</th><th>hot</th>
<th>cold</th><th>indexed</th><th>index progress</th><th>pressure</th></tr></thead><tbody></tbody></table>
<script>
"use strict";
const colors = ["#1f77b4", "#ff7f0e", "#d62728", "#9467bd", "#8c564b", "#e377c2"];
const token = new URLSearchParams(location.search).get("token");
const qs = token ? "?token=" + encodeURIComponent(token) : "";
const series = {}; // table -> [{t, episodes, ingest_rate, ...}]
function add(name, s) {
  const h = series[name] || (series[name] = []);
  if (!h.length || s.t > h[h.length - 1].t) h.push(s);
  if (h.length > 300) h.shift();
}
function fmt(x, d) { return Number(x).toLocaleString(undefined, {maximumFractionDigits: d || 0}); }
function draw() {
  const c = document.getElementById("chart"), g = c.getContext("2d");
  const W = c.width, H = c.height, L = 60, R = 60, T = 20, B = 30;
  g.fillStyle = "#fff"; g.fillRect(0, 0, W, H);
  g.strokeStyle = "#999"; g.lineWidth = 1;
  g.strokeRect(L, T, W - L - R, H - T - B);
  const names = Object.keys(series).sort();
  let t0 = Infinity, t1 = -Infinity, emax = 1, rmax = 1;
  for (const n of names) for (const s of series[n]) {
    t0 = Math.min(t0, s.t); t1 = Math.max(t1, s.t);
    emax = Math.max(emax, s.episodes); rmax = Math.max(rmax, s.ingest_rate);
  }
  if (!(t1 > t0)) { t0 = (isFinite(t1) ? t1 : 0) - 60; t1 = t0 + 60; }
  const x = t => L + (t - t0) / (t1 - t0) * (W - L - R);
  const ye = v => H - B - v / emax * (H - T - B);
  const yr = v => H - B - v / rmax * (H - T - B);
  g.fillStyle = "#444"; g.font = "11px sans-serif";
  g.fillText(fmt(emax) + " episodes", 4, T + 4);
  g.fillText(fmt(rmax) + "/s", W - R + 4, T + 4);
  g.fillText("0", L - 12, H - B);
  g.fillText("last " + fmt(t1 - t0) + " s", W / 2 - 20, H - 8);
  names.forEach((n, i) => {
    const h = series[n], col = colors[i % colors.length];
    g.strokeStyle = col; g.lineWidth = 3; g.setLineDash([]);
    g.beginPath();
    h.forEach((s, j) => j ? g.lineTo(x(s.t), ye(s.episodes)) : g.moveTo(x(s.t), ye(s.episodes)));
    if (h.length === 1) g.lineTo(W - R, ye(h[0].episodes));
    g.stroke();
    g.lineWidth = 1.5; g.setLineDash([5, 4]);
    g.beginPath();
    h.forEach((s, j) => j ? g.lineTo(x(s.t), yr(s.ingest_rate)) : g.moveTo(x(s.t), yr(s.ingest_rate)));
    g.stroke(); g.setLineDash([]);
    g.fillStyle = col; g.fillRect(L + 10 + i * 120, T + 6, 12, 12);
    g.fillStyle = "#222"; g.fillText(n, L + 26 + i * 120, T + 16);
  });
  const body = document.querySelector("#tables tbody");
  body.innerHTML = "";
  for (const n of names) {
    const s = series[n][series[n].length - 1];
    const progress = s.hot > 0 ? s.indexed / s.hot : 1;
    const tr = document.createElement("tr");
    tr.innerHTML = `<td>${n}</td><td>${fmt(s.episodes)}</td><td>${fmt(s.ingest_rate, 1)}</td>` +
      `<td>${fmt(s.hot)}</td><td>${fmt(s.cold)}</td><td>${fmt(s.indexed)}</td>` +
      `<td><span class="bar"><span style="width:${(progress * 100).toFixed(1)}%"></span></span> ` +
      `${(progress * 100).toFixed(1)}%</td><td>${(s.pressure * 100).toFixed(2)}%</td>`;
    body.appendChild(tr);
  }
}
function take(snapshot, history) {
  for (const t of snapshot.tables) {
    if (history && t.history) t.history.forEach(s => add(t.name, s));
    else if (t.latest) add(t.name, t.latest);
  }
  draw();
}
fetch("/stats" + qs).then(r => r.json()).then(s => {
  take(s, true);
  document.getElementById("status").textContent = "live: " + Object.keys(series).length + " table(s)";
  const es = new EventSource("/stats/stream" + qs);
  es.addEventListener("stats", e => take(JSON.parse(e.data), false));
  es.onerror = () => { document.getElementById("status").textContent = "reconnecting…"; };
}).catch(e => { document.getElementById("status").textContent = "error: " + e; });
draw();
</script></body></html>
)HTML";
}

} // namespace engram::server
