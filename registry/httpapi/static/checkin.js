// The visitors' form at a site by appointment only: when the visitor
// leaves the appointment code's input, ask the server whether the site has
// that appointment today and say so at once, before the address is typed.
// Without scripts the code is checked when the form is sent.
(function () {
  "use strict";
  var input = document.querySelector('input[name="appointment"]');
  if (!input || !window.fetch) {
    return;
  }
  var form = input.form;
  var site = form.getAttribute("action");
  var note = document.createElement("p");
  note.id = input.id + "-check";
  note.setAttribute("role", "status");
  input.insertAdjacentElement("afterend", note);
  var described = input.getAttribute("aria-describedby");
  input.setAttribute("aria-describedby", (described ? described + " " : "") + note.id);
  var ok = form.getAttribute("data-appointment-ok") || "";
  var bad = form.getAttribute("data-appointment-bad") || "";
  var last = "";
  input.addEventListener("blur", function () {
    var code = input.value.trim();
    if (code === "" || code === last) {
      return;
    }
    last = code;
    fetch(site + "/appointment?code=" + encodeURIComponent(code), { credentials: "same-origin", cache: "no-store" })
      .then(function (resp) {
        if (resp.status === 204) {
          note.className = "done";
          note.textContent = ok;
          input.removeAttribute("aria-invalid");
        } else if (resp.status === 404) {
          note.className = "error";
          note.textContent = bad;
          input.setAttribute("aria-invalid", "true");
        }
      })
      .catch(function () { /* offline: the form checks it when sent */ });
  });
})();
