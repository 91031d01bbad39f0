// Dashboard pages: confirmation of actions and the charts (data from #chart-data).
"use strict";

document.querySelectorAll("form[data-confirm]").forEach(function (form) {
  form.addEventListener("submit", function (event) {
    if (!window.confirm(form.dataset.confirm)) { event.preventDefault(); }
  });
});

function drawCharts(data) {
  var layout = function (title, ytitle) {
    return { title: { text: title }, margin: { t: 70, r: 10, b: 50, l: 60 },
             yaxis: { title: { text: ytitle } },
             legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom" } };
  };
  var column = function (rows, j) { return rows.map(function (r) { return r[j]; }); };
  var rate = data.arms.map(function (arm, j) {
    return { x: data.times, y: column(data.mean_reward, j), name: arm, mode: "lines+markers",
             type: "scatter", connectgaps: false };
  });
  Plotly.newPlot("chart-rate", rate, layout("Cumulative mean reward per arm", "mean reward"),
                 { displaylogo: false, responsive: true });
  var weights = data.arms.map(function (arm, j) {
    return { x: data.times, y: column(data.weights, j), name: arm, stackgroup: "w",
             mode: "lines+markers", type: "scatter" };
  });
  Plotly.newPlot("chart-weights", weights, layout("Weights after each policy update", "weight"),
                 { displaylogo: false, responsive: true });
}

var node = document.getElementById("chart-data");
if (node && window.Plotly) { drawCharts(JSON.parse(node.textContent)); }
