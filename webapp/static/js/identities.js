// Identity page behaviours: the undo toast after an override change, the expiry picker.
// No inline scripts: the CSP forbids them.
(function () {
  "use strict";

  // Servers send HX-Trigger: {"override-changed": {"message", "undoUrl"}}.
  document.addEventListener("override-changed", function (event) {
    var detail = event.detail || {};
    var undo = null;
    if (detail.undoUrl && window.htmx) {
      undo = document.createElement("button");
      undo.type = "button";
      undo.className = "undo-override";
      undo.textContent = "Undo";
      undo.setAttribute("hx-post", detail.undoUrl);
      undo.setAttribute("hx-swap", "none");
      undo.addEventListener("htmx:afterRequest", function () {
        var toast = undo.closest(".toast");
        if (toast) { toast.remove(); }
      });
    }
    if (window.flagpostToast) {
      window.flagpostToast("info", detail.message || "Override saved.", undo);
    }
    // The button is in the document now (inside #toasts): let htmx wire it, inheriting
    // the body's hx-headers (the CSRF token).
    if (undo) { window.htmx.process(undo); }
  });

  function syncExpiry() {
    var choice = document.getElementById("override-expires");
    var custom = document.getElementById("override-expires-at");
    if (!choice || !custom) { return; }
    custom.hidden = choice.value !== "custom";
  }
  document.addEventListener("change", function (event) {
    if (event.target && event.target.id === "override-expires") { syncExpiry(); }
  });
  document.addEventListener("DOMContentLoaded", syncExpiry);
})();
