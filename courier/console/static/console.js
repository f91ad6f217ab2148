// Courier console: the few behaviours htmx does not declare. No inline script anywhere.
(function () {
  "use strict";
  function status(text) {
    var el = document.getElementById("live-status");
    if (el && el.textContent !== text) { el.textContent = text; }
  }
  document.addEventListener("htmx:sseOpen", function () { status("Live"); });
  document.addEventListener("htmx:sseError", function () { status("Reconnecting"); });
  document.addEventListener("htmx:sseClose", function () { status("Offline"); });
  // A sent reply empties its form; focus stays where it was.
  document.addEventListener("htmx:afterRequest", function (event) {
    var form = event.detail.elt;
    if (form && form.classList && form.classList.contains("reply") && event.detail.successful) {
      var text = form.querySelector("textarea");
      if (text) { text.value = ""; }
    }
  });
})();
