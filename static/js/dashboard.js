/* The dashboard's chart: draws the cancellations per day, stacked by reason, from the
   json_script data the page carries. Only an enhancement: without Chart.js (not vendored,
   blocked) the page keeps showing the same figures as a table. */
(function () {
  "use strict";

  var PALETTE = [
    "#0b5cad", "#b42318", "#1a7f37", "#9a6700", "#6f42c1",
    "#0a7f8c", "#c2410c", "#57606a", "#bf3989", "#3b7d23"
  ];

  function draw() {
    var source = document.getElementById("daily-chart-data");
    var box = document.getElementById("daily-chart-box");
    var canvas = document.getElementById("daily-chart");
    if (!source || !box || !canvas || typeof window.Chart === "undefined") {
      return;
    }
    var data;
    try {
      data = JSON.parse(source.textContent);
    } catch (error) {
      return;
    }
    var datasets = data.datasets.map(function (dataset, index) {
      return {
        label: dataset.label,
        data: dataset.data,
        backgroundColor: PALETTE[index % PALETTE.length],
        borderWidth: 0
      };
    });
    var reduceMotion = window.matchMedia &&
      window.matchMedia("(prefers-reduced-motion: reduce)").matches;

    box.hidden = false;
    new window.Chart(canvas, {
      type: "bar",
      data: { labels: data.labels, datasets: datasets },
      options: {
        animation: reduceMotion ? false : undefined,
        maintainAspectRatio: false,
        interaction: { mode: "index", intersect: false },
        plugins: { legend: { position: "bottom" } },
        scales: {
          x: { stacked: true },
          y: {
            stacked: true,
            beginAtZero: true,
            ticks: { precision: 0 },
            title: { display: true, text: data.yTitle }
          }
        }
      }
    });
    // The chart now shows the figures; the table stays one click away.
    var table = document.getElementById("daily-table");
    if (table) {
      table.open = false;
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
