/* The bulk cancellation page: polls the job's progress (staff:bulk-progress) every second
   while it is not finished and updates the bar and the counts; once it is finished, reloads
   the page once to show the results. Only an enhancement: without it the page refreshes
   itself (noscript meta refresh) and has a Refresh link. */
(function () {
  "use strict";

  var INTERVAL = 1000; // ms between polls
  var BACKOFF = 5000; // ms to wait after a failed poll
  var MAX_FAILURES = 30; // then stop; the Refresh link still works

  function start() {
    var panel = document.getElementById("bulk-progress-panel");
    var bar = document.getElementById("bulk-progress");
    if (!panel || !bar || panel.getAttribute("data-finished") === "true" || !window.fetch) {
      return;
    }
    var url = panel.getAttribute("data-progress-url");
    var texts = { statuses: {}, progress: "%(processed)s / %(total)s" };
    var textSource = document.getElementById("bulk-progress-texts");
    if (textSource) {
      try {
        texts = JSON.parse(textSource.textContent);
      } catch (error) {
        // keep the defaults
      }
    }
    var failures = 0;

    function setText(id, value) {
      var element = document.getElementById(id);
      if (element && element.textContent !== String(value)) {
        element.textContent = String(value);
      }
    }

    function show(data) {
      var percent = Math.max(0, Math.min(100, Number(data.percent) || 0));
      if (data.total || data.finished) {
        bar.value = percent;
        bar.setAttribute("aria-valuenow", String(percent));
      }
      bar.textContent = percent + " %";
      bar.setAttribute(
        "aria-valuetext",
        texts.progress
          .replace("%(processed)s", data.processed)
          .replace("%(total)s", data.total)
      );
      setText("bulk-percent", percent + " %");
      setText("bulk-total", data.total);
      setText("bulk-cancelled", data.cancelled);
      setText("bulk-skipped", data.skipped);
      setText("bulk-failed", data.failed);
      var failedCount = document.getElementById("bulk-failed-count");
      if (failedCount) {
        failedCount.classList.toggle("has-failures", data.failed > 0);
      }
      var badge = document.querySelector("#bulk-status .badge");
      if (badge && texts.statuses[data.status]) {
        badge.className = "badge badge-" + data.status;
        badge.textContent = texts.statuses[data.status];
      }
    }

    function poll() {
      window.fetch(url, {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
        cache: "no-store"
      })
        .then(function (response) {
          if (!response.ok) {
            throw new Error("HTTP " + response.status);
          }
          return response.json();
        })
        .then(function (data) {
          failures = 0;
          show(data);
          if (data.finished) {
            // Once: the reloaded page is finished and does not load this script.
            window.location.reload();
            return;
          }
          window.setTimeout(poll, INTERVAL);
        })
        .catch(function () {
          failures += 1;
          if (failures < MAX_FAILURES) {
            window.setTimeout(poll, BACKOFF);
          }
        });
    }

    window.setTimeout(poll, INTERVAL);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
