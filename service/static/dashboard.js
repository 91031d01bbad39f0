// Dashboard pages: confirmation of actions and the charts (data from #chart-data).
"use strict";

document.querySelectorAll("form[data-confirm]").forEach(function (form) {
  form.addEventListener("submit", function (event) {
    if (!window.confirm(form.dataset.confirm)) { event.preventDefault(); }
  });
});

// --- charts (time series: service/store/dashboard.py, service/web_charts.py) ---
var PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
               "#7f7f7f", "#bcbd22", "#17becf"];

function band(hex) {  // a palette colour as a translucent fill
  var v = parseInt(hex.slice(1), 16);
  return "rgba(" + (v >> 16) + "," + ((v >> 8) & 255) + "," + (v & 255) + ",0.15)";
}

function drawCharts(data) {
  var config = { displaylogo: false, responsive: true };
  var layout = function (title, ytitle, extra) {
    var base = { title: { text: title }, margin: { t: 70, r: 10, b: 50, l: 60 },
                 yaxis: { title: { text: ytitle } },
                 legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom" } };
    return Object.assign(base, extra || {});
  };
  var column = function (rows, j) { return rows.map(function (r) { return r[j]; }); };
  var colour = function (j) { return PALETTE[j % PALETTE.length]; };
  // markers too while there are few points: a single point of a line is not drawn
  var lines = function (xs) { return xs.length < 30 ? "lines+markers" : "lines"; };
  var rate = [];
  data.arms.forEach(function (arm, j) {
    rate.push({ x: data.times, y: column(data.high, j), mode: "lines", type: "scatter",
                line: { width: 0 }, legendgroup: arm, showlegend: false, hoverinfo: "skip" });
    rate.push({ x: data.times, y: column(data.low, j), mode: "lines", type: "scatter",
                line: { width: 0 }, fill: "tonexty", fillcolor: band(colour(j)),
                legendgroup: arm, showlegend: false, hoverinfo: "skip" });
    rate.push({ x: data.times, y: column(data.mean, j), name: arm, mode: lines(data.times),
                type: "scatter", legendgroup: arm, line: { color: colour(j) } });
  });
  Plotly.newPlot("chart-rate", rate,
                 layout("Cumulative mean reward per arm (band: 95% interval)", "mean reward"),
                 config);
  var best = data.arms.map(function (arm, j) {
    return { x: data.best_times, y: column(data.prob_best, j), name: arm,
             mode: lines(data.best_times),
             type: "scatter", line: { color: colour(j) } };
  });
  Plotly.newPlot("chart-best", best,
                 layout("Probability of being best", "P(best)", { yaxis: { range: [0, 1],
                        title: { text: "P(best)" } } }), config);
  var weights = data.arms.map(function (arm, j) {
    return { x: data.times, y: column(data.weights, j), name: arm, stackgroup: "w",
             mode: "lines+markers", marker: { size: 4 }, type: "scatter",
             line: { color: colour(j) } };
  });
  Plotly.newPlot("chart-weights", weights,
                 layout("Weights over time (markers: policy updates)", "weight"), config);
  Plotly.newPlot("chart-traffic",
                 [{ x: data.days, y: data.daily_decisions, type: "bar", name: "decisions" }],
                 layout("Decisions per day (UTC)", "decisions",
                        { xaxis: { type: "category" } }), config);
}

var node = document.getElementById("chart-data");
if (node && window.Plotly) { drawCharts(JSON.parse(node.textContent)); }
