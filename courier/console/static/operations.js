// Courier console, operator screens: waits that tick, and an action's alert cleared once an
// action succeeds. No inline script anywhere (the CSP allows none).
(function () {
  "use strict";
  // A wait shown as a clock (4:05, 1:02:03), counted from its element's datetime attribute:
  // every <time data-tick>, including those a live refresh brings in.
  function clock(seconds) {
    var h = Math.floor(seconds / 3600);
    var m = Math.floor((seconds % 3600) / 60);
    var s = seconds % 60;
    var mm = h ? (m < 10 ? "0" + m : String(m)) : String(m);
    return (h ? h + ":" : "") + mm + ":" + (s < 10 ? "0" + s : String(s));
  }
  function tick() {
    var now = Date.now();
    var waits = document.querySelectorAll("time[data-tick]");
    for (var i = 0; i < waits.length; i++) {
      var since = Date.parse(waits[i].getAttribute("datetime") || "");
      if (!isNaN(since)) {
        var text = clock(Math.max(0, Math.floor((now - since) / 1000)));
        if (waits[i].textContent !== text) { waits[i].textContent = text; }
      }
    }
  }
  setInterval(tick, 1000);
  document.addEventListener("DOMContentLoaded", tick);

  document.addEventListener("htmx:afterRequest", function (event) {
    var problem = document.getElementById("action-error");
    var path = (event.detail && event.detail.pathInfo && event.detail.pathInfo.requestPath) || "";
    if (problem && event.detail.successful && path.indexOf("live=1") === -1) {
      problem.textContent = "";
    }
  });
})();
