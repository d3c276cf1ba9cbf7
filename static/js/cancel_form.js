// The cancel form uses what is typed: a quantity switches to "Some items", a date to "At a date
// and time". Without JavaScript the server refuses the mismatch next to the field instead.
(function () {
  "use strict";
  var form = document.querySelector("form.cancel-form");
  if (!form) return;

  function choose(name, value) {
    var radio = form.querySelector('input[name="' + name + '"][value="' + value + '"]');
    if (radio && !radio.checked) {
      radio.checked = true;
      radio.dispatchEvent(new Event("change", { bubbles: true }));
    }
  }

  form.addEventListener("input", function (event) {
    var field = event.target;
    if (/^item_\d+$/.test(field.name) && Number(field.value) > 0) choose("scope", "items");
    if (field.name === "churn_time" && field.value) choose("churn_time_policy", "at-time");
  });

  var summary = document.getElementById("error-summary");
  if (summary) summary.focus();
})();
