/* The deliveries on the cancellation page (and in the order page's Cancellations table): while
   a delivery is pending or in flight, polls where each provider stands
   (staff:cancellation-deliveries, staff:order-deliveries) and updates every element marked
   data-delivery="<id>" in place (status, attempts, when, last answer, the Retry button, the
   attempt history: whichever the page shows); stops once nothing can change by itself. Only an enhancement: without it the page refreshes itself
   (noscript meta refresh) and has a Refresh link. */
(function () {
  "use strict";

  var BACKOFF = 10000; // ms to wait after a failed poll
  var MAX_FAILURES = 30; // then stop; the Refresh link still works

  function start() {
    var source = document.getElementById("delivery-poll");
    if (!source || !window.fetch) {
      return;
    }
    var config;
    try {
      config = JSON.parse(source.textContent);
    } catch (error) {
      return;
    }
    var interval = Math.max(200, Number(config.interval) || 3000);
    var failures = 0;
    var histories = {}; // delivery id → the history HTML shown, to replace it only on change

    function setText(element, value) {
      if (element && element.textContent !== String(value)) {
        element.textContent = String(value);
      }
    }

    function showStatus(row, data) {
      var cell = row.querySelector(".delivery-status");
      var badge = cell && cell.querySelector(".badge");
      if (badge) {
        badge.className = "badge badge-" + data.badge;
        setText(badge, data.label);
      }
      row.setAttribute("data-status", data.status);
      var credentials = row.querySelector(".delivery-credentials");
      if (credentials) {
        credentials.hidden = !data.credentialsProblem;
      }
      var retry = row.querySelector(".delivery-retry");
      if (retry) {
        retry.hidden = !data.retryable;
      }
    }

    function showWhen(row, data) {
      var cell = row.querySelector(".delivery-when");
      if (!cell) {
        return;
      }
      var time = cell.querySelector("time");
      if (data.when && time && cell.firstChild && cell.firstChild.nodeType === Node.TEXT_NODE &&
          cell.firstChild.textContent.trim() === data.whenLabel) {
        time.setAttribute("datetime", data.whenIso);
        setText(time, data.when);
        return;
      }
      var fresh = document.createDocumentFragment();
      if (data.when) {
        fresh.appendChild(document.createTextNode(data.whenLabel + " "));
        time = document.createElement("time");
        time.setAttribute("datetime", data.whenIso);
        time.textContent = data.when;
        fresh.appendChild(time);
      } else {
        fresh.appendChild(document.createTextNode("—"));
      }
      cell.replaceChildren(fresh);
    }

    function showHistory(data) {
      var row = document.querySelector('tr[data-attempts-of="' + data.id + '"]');
      if (!row || data.history === undefined || histories[data.id] === data.history) {
        return;
      }
      var cell = row.querySelector("td");
      var details = cell.querySelector("details");
      var open = details ? details.open : false;
      cell.innerHTML = data.history; // rendered and escaped by the server's template
      details = cell.querySelector("details");
      if (details) {
        details.open = open;
      }
      row.hidden = data.attempts === 0;
      histories[data.id] = data.history;
    }

    function show(deliveries) {
      deliveries.forEach(function (data) {
        var marked = document.querySelectorAll('[data-delivery="' + data.id + '"]');
        Array.prototype.forEach.call(marked, function (row) {
          showStatus(row, data);
          setText(row.querySelector(".delivery-attempts"), data.attempts);
          setText(row.querySelector(".delivery-answer"), data.lastAnswer);
          showWhen(row, data);
        });
        showHistory(data);
      });
    }

    function poll() {
      window.fetch(config.url, {
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
          show(data.deliveries || []);
          if (data.live) {
            window.setTimeout(poll, interval);
          } else {
            var note = document.getElementById("deliveries-live");
            if (note) {
              note.hidden = true;
            }
          }
        })
        .catch(function () {
          failures += 1;
          if (failures < MAX_FAILURES) {
            window.setTimeout(poll, BACKOFF);
          }
        });
    }

    window.setTimeout(poll, interval);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
