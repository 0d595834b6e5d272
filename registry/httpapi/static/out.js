// The check-out link /checkin/<site>/out#<id>.<token>~<id>.<token> (the
// confirmation link on the phone, the QR code of a visitor slip). The
// tickets sit in the URL fragment, which the browser never sends to the
// server: no token reaches any log. This script takes them out of the
// address, drops the fragment from the history and puts them into the
// form that posts them.
(function () {
  "use strict";
  var form = document.getElementById("out");
  var bad = document.getElementById("out-invalid");
  if (!form || !bad) { return; }
  var raw = window.location.hash.slice(1);
  window.history.replaceState(null, "", window.location.pathname + window.location.search);
  var shape = /^[0-9a-f]{32}\.rgc_[A-Za-z0-9_-]{43}$/;
  var tickets = raw.split("~").filter(function (t) { return shape.test(t); });
  if (tickets.length === 0 || tickets.length > 20) {
    bad.hidden = false;
    return;
  }
  tickets.forEach(function (t) {
    var input = document.createElement("input");
    input.type = "hidden";
    input.name = "t";
    input.value = t;
    form.appendChild(input);
  });
  form.hidden = false;
  form.querySelector("button").focus();
})();
