// The host's page updates itself: every few seconds it fetches the page
// named by data-src (same origin, the session cookie; after a cancel the
// address bar holds the form's POST address) and replaces its list, and a
// status line tells screen readers about a visitor that just arrived.
// Without scripts the page reloads itself instead (a <noscript> refresh).
(function () {
  "use strict";
  var live = document.getElementById("live");
  var status = document.getElementById("live-status");
  if (!live || !window.fetch || !window.DOMParser) {
    return;
  }
  var seconds = Math.max(2, parseInt(live.getAttribute("data-seconds"), 10) || 5);
  var src = live.getAttribute("data-src") || window.location.href;
  var timer = null;
  var fresh = {}; // code → when it arrived here, highlighted for a minute
  var highlight = 60 * 1000;

  function arrived(root) {
    var codes = {};
    root.querySelectorAll("tr[data-announce]").forEach(function (tr) {
      codes[tr.getAttribute("data-code")] = tr.getAttribute("data-announce");
    });
    return codes;
  }

  var known = arrived(live);

  function schedule() {
    clearTimeout(timer);
    if (!document.hidden) {
      timer = setTimeout(update, seconds * 1000);
    }
  }

  function update() {
    fetch(src, { credentials: "same-origin", cache: "no-store", redirect: "follow" })
      .then(function (resp) {
        if (resp.redirected || resp.status === 401 || resp.status === 403) {
          // Signed out, or the session ended: show what the server says.
          window.location.reload();
          return null;
        }
        if (!resp.ok) {
          throw new Error("HTTP " + resp.status); // busy or down: try again later
        }
        return resp.text();
      })
      .then(function (html) {
        if (html === null) {
          return;
        }
        var next = new DOMParser().parseFromString(html, "text/html").getElementById("live");
        if (!next) {
          return;
        }
        var arrivals = arrived(next);
        var news = Object.keys(arrivals).filter(function (code) { return !known[code]; });
        // Never under the clerk's hands: while a row is ticked or the
        // focus is in the list, the list waits for the next round.
        var busy = live.contains(document.activeElement) || live.querySelector("input[type=checkbox]:checked");
        if (busy) {
          return;
        }
        if (live.innerHTML !== next.innerHTML) {
          live.innerHTML = next.innerHTML;
        }
        var t = Date.now();
        news.forEach(function (code) { fresh[code] = t; });
        Object.keys(fresh).forEach(function (code) {
          var row = live.querySelector('tr[data-code="' + code + '"]');
          if (t - fresh[code] > highlight || !row) {
            delete fresh[code];
          } else {
            row.classList.add("new");
          }
        });
        if (news.length > 0 && status) {
          status.textContent = news.map(function (code) { return arrivals[code]; }).join(" ");
        }
        known = arrivals;
      })
      .catch(function () { /* offline for a moment: try again */ })
      .then(schedule);
  }

  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) {
      update();
    } else {
      clearTimeout(timer);
    }
  });
  schedule();
})();
