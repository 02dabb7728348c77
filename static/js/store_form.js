/* Store form: show only the credential fields of the chosen platform (rows carry data-platforms).
   Without JavaScript every row shows and the server uses only the chosen platform's fields. */
(function () {
  "use strict";

  function sync(select) {
    document.querySelectorAll("[data-platforms]").forEach(function (row) {
      row.hidden = row.getAttribute("data-platforms").split(" ").indexOf(select.value) === -1;
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    const select = document.querySelector("select[name=platform][data-credential-switch]");
    if (!select) return;
    sync(select);
    select.addEventListener("change", function () { sync(select); });
  });
})();
