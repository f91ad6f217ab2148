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
      var problem = document.getElementById("reply-error");
      if (problem) { problem.textContent = ""; }
    }
  });

  // Live refreshes never move focus (htmx keeps the focused element by its id) and announce
  // what is new in a polite live region, never the patient's words.
  function count(selector) {
    var el = document.querySelector(selector);
    return el ? parseInt(el.textContent, 10) || 0 : null;
  }
  var seen = {};
  function remember() {
    seen.unread = count("[data-count=unread]");
    seen.messages = document.querySelectorAll(".messages > li").length;
  }
  function announce(text) {
    var news = document.getElementById("live-news");
    if (news) { news.textContent = text; }
  }
  document.addEventListener("DOMContentLoaded", remember);
  document.addEventListener("htmx:afterSwap", function (event) {
    var id = event.detail && event.detail.target && event.detail.target.id;
    if (id === "inbox-list") {
      var unread = count("[data-count=unread]");
      if (seen.unread !== null && unread !== null && unread > seen.unread) {
        announce(unread + " unread conversations");
      }
    } else if (id === "messages") {
      var messages = document.querySelectorAll(".messages > li").length;
      if (messages > seen.messages) {
        announce(messages - seen.messages === 1 ? "1 new message" : (messages - seen.messages) + " new messages");
      }
    }
    remember();
  });

  // Arrow keys move between the inbox's conversations (Home and End: the first and last).
  document.addEventListener("keydown", function (event) {
    var keys = { ArrowDown: 1, ArrowUp: -1, Home: "first", End: "last" };
    if (!(event.key in keys) || !event.target.closest) { return; }
    var current = event.target.closest("table.inbox tbody a");
    if (!current) { return; }
    var links = Array.prototype.slice.call(document.querySelectorAll("table.inbox tbody a"));
    var step = keys[event.key];
    var index = links.indexOf(current);
    var next = step === "first" ? links[0] : step === "last" ? links[links.length - 1] : links[index + step];
    if (next) {
      next.focus();
      event.preventDefault();
    }
  });

  // "/" at the start of the reply opens the organization's templates by name (a listbox the
  // reply box controls: arrows move, Enter inserts the template rendered for this patient,
  // Escape closes). The text stays the reply box's until a template is chosen.
  function picker() {
    var box = document.getElementById("reply-text");
    var list = document.getElementById("template-options");
    var said = document.getElementById("template-status");
    if (!box || !list || !box.getAttribute("data-templates")) { return; }
    var base = box.getAttribute("data-templates");
    var asked = 0;
    function options() { return Array.prototype.slice.call(list.querySelectorAll("[role=option]")); }
    function active() { return list.querySelector("[aria-selected=true]"); }
    function select(option) {
      options().forEach(function (o) { o.setAttribute("aria-selected", o === option ? "true" : "false"); });
      if (option) {
        box.setAttribute("aria-activedescendant", option.id);
        option.scrollIntoView({ block: "nearest" });
      }
    }
    function close() {
      list.hidden = true;
      list.replaceChildren();
      box.removeAttribute("aria-activedescendant");
      asked += 1;  // an answer still on its way is dropped
    }
    function open(query) {
      var turn = ++asked;
      fetch(base + "?q=" + encodeURIComponent(query), { credentials: "same-origin", cache: "no-store" })
        .then(function (response) { return response.ok ? response.text() : ""; })
        .then(function (html) {
          if (turn !== asked) { return; }
          list.innerHTML = html;
          var found = options();
          list.hidden = found.length === 0;
          if (said) { said.textContent = found.length ? found.length + " templates" : "No template matches"; }
          select(found[0] || null);
        })
        .catch(function () { /* offline: the list stays as it was */ });
    }
    function choose(option) {
      if (!option) { return; }
      var id = option.getAttribute("data-template");
      close();
      fetch(base + "/" + encodeURIComponent(id), { credentials: "same-origin", cache: "no-store" })
        .then(function (response) {
          return response.text().then(function (text) { return { ok: response.ok, text: text }; });
        })
        .then(function (answer) {
          if (answer.ok) {
            box.value = answer.text;
            box.setSelectionRange(box.value.length, box.value.length);
            if (said) { said.textContent = "Template inserted"; }
          } else {
            var problem = document.getElementById("reply-error");
            if (problem) { problem.textContent = answer.text; }
          }
          box.focus();
        });
    }
    box.addEventListener("input", function () {
      var typed = /^\/([^\n]*)$/.exec(box.value);
      if (typed) { open(typed[1]); } else if (!list.hidden) { close(); }
    });
    box.addEventListener("keydown", function (event) {
      if (list.hidden) { return; }
      var all = options();
      var index = all.indexOf(active());
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        var step = event.key === "ArrowDown" ? 1 : -1;
        select(all[(index + step + all.length) % all.length] || null);
        event.preventDefault();
      } else if (event.key === "Enter") {
        choose(active());
        event.preventDefault();
      } else if (event.key === "Escape") {
        close();
        event.preventDefault();
      }
    });
    list.addEventListener("click", function (event) {
      var option = event.target.closest && event.target.closest("[role=option]");
      if (option) { choose(option); }
    });
    box.addEventListener("blur", function () {
      // A click on an option lands before the blur closes the list.
      setTimeout(function () { if (document.activeElement !== box && !list.hidden) { close(); } }, 200);
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", picker);
  } else {
    picker();
  }

  // Inactivity lock. The server ends an idle session by itself; this page follows it: it
  // reports the person's activity (at most every 15 s), warns 30 s ahead with a one-key
  // "Stay signed in", and at the limit removes the patient content from the DOM before
  // going to the sign-in page.
  function start() {
    var body = document.body;
    var idle = parseInt((body && body.getAttribute("data-idle-seconds")) || "0", 10) * 1000;
    if (!idle) { return; }
    var WARN = 30000;
    var TOUCH = 15000;
    var lastTouch = Date.now();
    var warning = document.getElementById("idle-warning");
    var left = document.getElementById("idle-left");
    var stay = document.getElementById("stay-signed-in");
    var before = null;
    var locked = false;

    function csrf() {
      try { return JSON.parse(body.getAttribute("hx-headers") || "{}")["X-CSRF-Token"] || ""; }
      catch (e) { return ""; }
    }
    // The page and its unsent reply go to the server (never to browser storage) while the
    // session still lives, so that signing in again reopens them; then the patient content
    // leaves the DOM. ``gone``: the server has ended the session already (nothing to keep).
    function lock(gone) {
      if (locked) { return; }
      locked = true;
      var reply = document.getElementById("reply-text");
      var form = new URLSearchParams();
      form.set("path", window.location.pathname + window.location.search);
      form.set("draft", reply ? reply.value : "");
      ["main", "live", "idle-warning"].forEach(function (id) {
        var el = document.getElementById(id);
        if (el) { el.replaceChildren(); }
      });
      function away() { window.location.replace("/console/sign-in?locked=1"); }
      if (gone) { away(); return; }
      fetch("/console/lock", {
        method: "POST", credentials: "same-origin", cache: "no-store",
        headers: { "X-CSRF-Token": csrf() }, body: form
      }).then(away, away);
    }
    function touch() {
      lastTouch = Date.now();
      fetch("/console/ping", { credentials: "same-origin", cache: "no-store" })
        .then(function (response) { if (response.status === 401) { lock(true); } })
        .catch(function () { /* offline: the next check decides */ });
    }
    function hideWarning() {
      if (warning && !warning.hidden) {
        warning.hidden = true;
        if (before && before.focus) { before.focus(); }
        before = null;
      }
    }
    function activity() {
      if (Date.now() - lastTouch >= TOUCH) { touch(); }
      hideWarning();
    }
    ["keydown", "pointerdown", "input"].forEach(function (name) {
      document.addEventListener(name, function (event) {
        if (warning && !warning.hidden && warning.contains(event.target)) { return; }
        activity();
      }, true);
    });
    // A request of the page's own (not a live refresh) is activity on the server too.
    document.addEventListener("htmx:beforeRequest", function (event) {
      var path = (event.detail && event.detail.pathInfo && event.detail.pathInfo.requestPath) || "";
      if (path.indexOf("live=1") === -1) { lastTouch = Date.now(); }
    });
    // A stream the server refused (the session has ended elsewhere: signed out, key
    // revoked) is not retried blindly: if the session is gone, lock now.
    document.addEventListener("htmx:sseError", function (event) {
      var source = event.detail && event.detail.source;
      if (source && source.readyState === 2) { touch(); }
    });
    if (stay) {
      stay.addEventListener("click", function () { touch(); hideWarning(); });
    }
    setInterval(function () {
      // The server counts activity to 15 s: lock that much early rather than late.
      var remaining = lastTouch + idle - TOUCH - Date.now();
      if (remaining <= 1000) { lock(false); return; }
      if (remaining <= WARN && warning) {
        if (left) { left.textContent = String(Math.ceil(remaining / 1000)); }
        if (warning.hidden) {
          before = document.activeElement;
          warning.hidden = false;
          if (stay) { stay.focus(); }
        }
      }
    }, 1000);
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
