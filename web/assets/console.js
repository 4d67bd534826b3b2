// crier console: small progressive enhancements; every page works without this file.
// - [data-refresh]: fetches its URL every data-every seconds and replaces the content, until
//   the fragment says data-complete="true" (the dashboard).
// - [data-stream]: an EventSource on its URL; each `progress` event's HTML replaces the
//   content (the incident's delivery progress) until the `done` event, when every delivery is
//   final. data-sse counts the events received.
// - form#compose: the per-channel preview follows the text as it is typed (POST the form to
//   /console/preview?fragment, debounced), from the same preview code as the API;
//   form#add-notice likewise shows a notice's next fire times (or the API's message) as the
//   crontab expression is typed (/console/notices/preview?fragment).
// - input[type=file][data-into]: reads a chosen CSV file into the import form's text field.
// - select#template on the compose page: applies an incident template at once.
"use strict";
(function () {
  function refresh(el) {
    var every = Math.max(1, parseInt(el.getAttribute("data-every") || "5", 10)) * 1000;
    var url = el.getAttribute("data-refresh");
    function tick() {
      if (el.getAttribute("data-complete") === "true") { return; }
      // Someone is typing in it (a rejection reason): not now.
      if (el.contains(document.activeElement) && document.activeElement !== document.body) {
        setTimeout(tick, every);
        return;
      }
      fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (r) {
          if (r.redirected || r.status === 401) { window.location.assign("/console/login?ended=1"); return null; }
          return r.ok ? r.text() : null;
        })
        .then(function (html) {
          if (html === null) { return; }
          el.innerHTML = html;
          var done = el.querySelector("[data-complete]");
          if (done) { el.setAttribute("data-complete", done.getAttribute("data-complete")); }
        })
        .catch(function () { /* offline for a moment: try again at the next tick */ })
        .then(function () { setTimeout(tick, every); });
    }
    setTimeout(tick, every);
  }

  function liveStream(el) {
    if (typeof EventSource === "undefined") { return; }
    document.documentElement.classList.add("js");
    var es = new EventSource(el.getAttribute("data-stream"));
    var received = 0;
    var held = null;
    // Someone is on a button in it (requeue): the content changes when they leave.
    function busy() {
      return el.contains(document.activeElement) && document.activeElement !== document.body;
    }
    es.addEventListener("progress", function (e) {
      received += 1;
      el.setAttribute("data-sse", String(received));
      if (busy()) { held = e.data; return; }
      el.innerHTML = e.data;
    });
    el.addEventListener("focusout", function () {
      if (held !== null) { el.innerHTML = held; held = null; }
    });
    es.addEventListener("done", function () {
      es.close();
      el.setAttribute("data-sse-state", "done");
    });
    es.addEventListener("error", function () {
      // A dropped connection (the server restarting) is retried by the browser; a refusal
      // (the session ended: the login page came instead of a stream) closes it for good.
      if (es.readyState !== EventSource.CLOSED) { return; }
      el.setAttribute("data-sse-state", "closed");
      var p = document.createElement("p");
      p.className = "error reload";
      p.setAttribute("role", "alert");
      var a = document.createElement("a");
      a.href = window.location.pathname;
      a.textContent = "Reload the page";
      p.appendChild(document.createTextNode("Live updates stopped. "));
      p.appendChild(a);
      p.appendChild(document.createTextNode(" to see the latest progress (you may need to sign in again)."));
      el.parentNode.insertBefore(p, el);
    });
  }

  function livePreview(form) {
    var target = document.getElementById(form.getAttribute("data-target") || "previews");
    var url = form.getAttribute("data-preview");
    if (!target || !url) { return; }
    var timer = null;
    var seq = 0;
    function send() {
      var mine = ++seq;
      var body = new URLSearchParams(new FormData(form));
      body.delete("action");
      fetch(url, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/x-www-form-urlencoded" },
        body: body.toString()
      })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (html !== null && mine === seq) {
            target.innerHTML = html;
            target.setAttribute("data-seq", String(mine));
          }
        })
        .catch(function () {});
    }
    function later() { clearTimeout(timer); timer = setTimeout(send, 150); }
    form.addEventListener("input", later);
    form.addEventListener("change", later);
    document.documentElement.classList.add("js");
  }

  // Promises count down between refreshes: "— 11:58 left" or "— 3:12 overdue".
  function countdowns() {
    var now = Date.now();
    document.querySelectorAll(".countdown[data-due]").forEach(function (el) {
      var due = Date.parse(el.getAttribute("data-due"));
      if (isNaN(due)) { return; }
      var s = Math.round((due - now) / 1000);
      var a = Math.abs(s);
      var h = Math.floor(a / 3600), m = Math.floor((a % 3600) / 60), sec = a % 60;
      var t = (h > 0 ? h + ":" + String(m).padStart(2, "0") : String(m)) + ":" + String(sec).padStart(2, "0");
      el.textContent = s >= 0 ? "— " + t + " left" : "— " + t + " overdue";
      el.classList.toggle("late", s < 0);
    });
  }

  // input[type=file][data-into=ID]: the chosen file's text goes into the textarea #ID, which
  // the form posts (the CSV import works without this, by pasting).
  function fileInto(input) {
    var target = document.getElementById(input.getAttribute("data-into"));
    if (!target) { return; }
    document.documentElement.classList.add("js");
    input.addEventListener("change", function () {
      var f = input.files && input.files[0];
      if (!f) { return; }
      f.text().then(function (t) { target.value = t; }).catch(function () {});
    });
  }

  // select#template (compose): applying a template fills the compose form at once from the
  // option's data-fill (the same values GET /console/compose?template=ID fills in without
  // JavaScript), then the live preview follows.
  function fromTemplate(select, form) {
    select.addEventListener("change", function () {
      var opt = select.options[select.selectedIndex];
      var raw = opt ? opt.getAttribute("data-fill") : null;
      if (!raw) { return; }
      var t;
      try { t = JSON.parse(raw); } catch (e) { return; }
      ["title", "impact", "status"].forEach(function (name) {
        var el = form.querySelector("[name=" + name + "]");
        if (el && t[name] != null) { el.value = t[name]; }
      });
      form.querySelectorAll("input[type=checkbox][name=components]").forEach(function (c) {
        c.checked = (t.components || []).indexOf(c.value) >= 0;
      });
      form.querySelectorAll("textarea[name^=msg_]").forEach(function (ta) {
        ta.value = (t.messages || {})[ta.name.slice(4)] || "";
      });
      form.dispatchEvent(new Event("input", { bubbles: true }));
    });
  }

  // The maintenance-only fields (the reminder) show only while "planned maintenance" is
  // chosen; without JavaScript they are simply there, with a hint.
  function maintenanceOnly(form) {
    var blocks = form.querySelectorAll(".maintenance-only");
    if (!blocks.length) { return; }
    function sync() {
      var kind = form.querySelector("input[name=kind]:checked");
      var on = !!kind && kind.value === "maintenance";
      blocks.forEach(function (b) { b.hidden = !on; });
    }
    form.addEventListener("change", sync);
    sync();
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("input[type=file][data-into]").forEach(fileInto);
    countdowns();
    setInterval(countdowns, 1000);
    document.querySelectorAll("[data-refresh]").forEach(refresh);
    document.querySelectorAll("[data-stream]").forEach(liveStream);
    var compose = document.getElementById("compose");
    if (compose) { livePreview(compose); maintenanceOnly(compose); }
    var template = document.getElementById("template");
    if (compose && template) { fromTemplate(template, compose); }
    var notice = document.getElementById("add-notice");
    if (notice) { livePreview(notice); }
  });
})();
