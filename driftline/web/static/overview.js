// The overview's charts: one uPlot chart per metric, one line per service @ release, drawn from
// the same JSON as GET /api/v1/overview (embedded in the page). Drift tests firing now are marked
// on the chart of their SLI.
(function () {
  "use strict";
  var el = document.getElementById("overview-data");
  if (!el || typeof uPlot === "undefined") return;
  var data = JSON.parse(el.textContent || "{}");
  var series = data.series || [];
  if (!series.length) return;
  var palette = ["#2563eb", "#d97706", "#059669", "#7c3aed", "#db2777", "#0891b2", "#65a30d", "#dc2626", "#475569", "#ca8a04"];
  // SLI names of the drift tests -> the chart that shows that SLI.
  var driftChart = { hallucination_rate: "hallucination_rate", tool_failure_rate: "tool_failure_rate",
    error_rate: "error_rate", negative_feedback_rate: "negative_feedback_rate", latency_ms: "latency_p95_ms", cost_per_request: "cost_usd" };
  var firing = {};
  (data.drift_firing || []).forEach(function (d) {
    var m = driftChart[d.sli];
    if (!m) return;
    (firing[m] = firing[m] || []).push(d);
  });
  var times = {};
  series.forEach(function (s) { s.points.forEach(function (p) { times[p.t] = true; }); });
  var xs = Object.keys(times).map(Number).sort(function (a, b) { return a - b; });
  var index = {};
  xs.forEach(function (t, i) { index[t] = i; });

  var xmin = Date.parse(data.since) / 1000, xmax = Date.parse(data.until) / 1000;
  if (!(xmin < xmax)) { xmin = xs[0]; xmax = xs[xs.length - 1] + (data.step_s || 60); }

  function fmt(metric, v) {
    if (v == null) return "–";
    if (/_rate$/.test(metric)) return +(100 * v).toPrecision(3) + "%";
    if (metric === "cost_usd") return "$" + +v.toPrecision(3);
    if (metric === "latency_p95_ms") return v >= 1000 ? +(v / 1000).toPrecision(3) + " s" : +v.toPrecision(3) + " ms";
    return String(Math.round(v));
  }

  document.querySelectorAll(".chart").forEach(function (fig) {
    var metric = fig.getAttribute("data-metric");
    var plot = fig.querySelector(".plot");
    var drifting = firing[metric] || [];
    var cols = [xs];
    var opts = {
      width: Math.max(plot.clientWidth, 280), height: 180,
      legend: { live: true },
      cursor: { drag: { x: true, y: false } },
      // The whole requested range, so a young service's few points sit where they belong in time.
      scales: { x: { time: true, range: [xmin, xmax] }, y: { range: function (u, lo, hi) { return [0, hi > 0 ? hi * 1.15 : 1]; } } },
      axes: [{ stroke: "#475569", grid: { stroke: "#eef2f7" } },
             { stroke: "#475569", grid: { stroke: "#eef2f7" }, size: 70, values: function (u, vals) { return vals.map(function (v) { return fmt(metric, v); }); } }],
      series: [{}],
    };
    series.forEach(function (s, i) {
      var col = xs.map(function () { return null; });
      s.points.forEach(function (p) { col[index[p.t]] = p[metric]; });
      cols.push(col);
      var isDrift = drifting.some(function (d) { return d.service === s.service && d.release === s.release; });
      opts.series.push({
        label: s.service + " @ " + (s.release || "–") + (isDrift ? " (drifting)" : ""),
        stroke: isDrift ? "#dc2626" : palette[i % palette.length],
        width: isDrift ? 2.5 : 1.5, dash: isDrift ? [6, 3] : undefined,
        spanGaps: true, points: { show: xs.length < 40, size: 4 },
        value: function (u, v) { return fmt(metric, v); },
      });
    });
    if (drifting.length) {
      var mark = fig.querySelector(".drift-mark");
      mark.hidden = false;
      mark.className = "drift-mark badge bad";
      mark.textContent = "drift firing: " + drifting.map(function (d) { return d.service + " @ " + d.release; }).join(", ");
    }
    var u = new uPlot(opts, cols, plot);
    window.addEventListener("resize", function () { u.setSize({ width: Math.max(plot.clientWidth, 280), height: 180 }); });
  });
})();
