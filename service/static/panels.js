// Charts of the panels (service/templates/panels.html): share per slot, counterfactual values.
"use strict";

(function () {
  var config = { displaylogo: false, responsive: true };
  var read = function (id) {
    var node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  };
  var slots = read("slots-data");
  if (slots && window.Plotly) {
    var labels = slots.positions.map(function (p) { return "position " + (p + 1); });
    var traces = slots.arms.map(function (arm, j) {
      return { x: labels, y: slots.share.map(function (row) { return row[j]; }), name: arm,
               type: "bar" };
    });
    traces.push({ x: labels, y: slots.rate, name: "click rate", type: "scatter",
                  mode: "lines+markers", yaxis: "y2", line: { color: "#222" } });
    Plotly.newPlot("chart-slots", traces, {
      barmode: "stack", title: { text: "Share of each arm per position, and click rate" },
      margin: { t: 70, r: 60, b: 40, l: 60 },
      yaxis: { title: { text: "share" }, range: [0, 1] },
      yaxis2: { title: { text: "click rate" }, overlaying: "y", side: "right", rangemode: "tozero" },
      legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom" } }, config);
  }
  var cf = read("counterfactual-data");
  if (cf && window.Plotly) {
    var trace = { x: cf.value, y: cf.names, type: "scatter", mode: "markers",
                  marker: { size: 10, color: "#3b5bdb" },
                  error_x: { type: "data", symmetric: false,
                             array: cf.high.map(function (h, i) { return h - cf.value[i]; }),
                             arrayminus: cf.low.map(function (l, i) { return cf.value[i] - l; }) } };
    Plotly.newPlot("chart-counterfactual", [trace], {
      title: { text: "Mean reward per decision (SNIPS, 95% interval)" },
      margin: { t: 50, r: 20, b: 40, l: 200 }, yaxis: { autorange: "reversed" },
      showlegend: false }, config);
  }
})();
