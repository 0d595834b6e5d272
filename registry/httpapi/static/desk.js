// The desk's pages work without scripts; this one only adds the print
// button of the visitor slips and asks before a form marked data-confirm
// (cancelling an appointment) is sent.
(function () {
  "use strict";
  var button = document.getElementById("print");
  if (button) {
    button.addEventListener("click", function () { document.body.classList.remove("a4"); window.print(); });
  }
  var a4 = document.getElementById("print-a4"); // several slips to an A4 sheet
  if (a4) {
    a4.addEventListener("click", function () { document.body.classList.add("a4"); window.print(); });
  }
  document.addEventListener("submit", function (e) {
    var question = e.target.getAttribute && e.target.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      e.preventDefault();
    }
  });
})();
