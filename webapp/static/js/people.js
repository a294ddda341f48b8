// Copy buttons: <button data-copy="#input-id"> copies that input's value.
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-copy]");
    if (!button) { return; }
    var input = document.querySelector(button.getAttribute("data-copy"));
    if (!input) { return; }
    input.select();
    function done() { if (window.flagpostToast) { window.flagpostToast("info", "Link copied."); } }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(input.value).then(done, function () { document.execCommand("copy"); done(); });
    } else {
      document.execCommand("copy");
      done();
    }
  });
})();
