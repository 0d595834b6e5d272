// The desk's pages work without scripts; this one only adds the print
// button of the visitor slips.
(function () {
  "use strict";
  var button = document.getElementById("print");
  if (button) {
    button.addEventListener("click", function () { window.print(); });
  }
})();
