// Identity page behaviours: the undo toast after an override change, the expiry picker,
// the "Why?" rows under their flags and the flag filter.
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

  // "Why?" inserts its explanation as a table row right after the flag's row (hx-swap
  // afterend). A second press closes it; a new panel is scrolled into view.
  function whyButtonOf(row) {
    var flag = row && row.previousElementSibling;
    return flag ? flag.querySelector("button.why") : null;
  }

  function closeWhy(row) {
    var button = whyButtonOf(row);
    row.remove();
    if (button) { button.setAttribute("aria-expanded", "false"); }
    return button;
  }

  document.addEventListener("htmx:beforeRequest", function (event) {
    var button = event.detail.elt;
    if (!button || !button.matches || !button.matches("button.why")) { return; }
    var open = document.getElementById(button.getAttribute("aria-controls"));
    if (open) {
      event.preventDefault();
      closeWhy(open);
    }
  });

  function showWhy(row) {
    var button = whyButtonOf(row);
    if (button) { button.setAttribute("aria-expanded", "true"); }
    applyFilter();
    var flag = row.previousElementSibling;
    var box = row.getBoundingClientRect();
    if (box.bottom <= window.innerHeight && box.top >= 0) { return; }
    // Keep the question and its answer together: the flag's row at the top when the
    // panel does not fit below it, else just enough scrolling to show the whole panel.
    var rowTop = flag ? flag.getBoundingClientRect().top : box.top;
    if (box.bottom - rowTop > window.innerHeight) {
      (flag || row).scrollIntoView({ block: "start" });
    } else {
      row.scrollIntoView({ block: "nearest" });
    }
  }

  document.addEventListener("click", function (event) {
    var close = event.target.closest ? event.target.closest("button.why-close") : null;
    if (!close) { return; }
    var row = close.closest("tr.why-row");
    if (row) {
      var button = closeWhy(row);
      if (button) { button.focus(); }
    }
  });

  // The flag filter: by name, overridden, differing from the default. It runs in the browser
  // over the rendered rows (every flag is on the page) and keeps its state in the address,
  // so a reload or a shared link shows the same rows.
  function filterParts() {
    var form = document.getElementById("flag-filter");
    if (!form) { return null; }
    return {
      form: form,
      name: document.getElementById("flag-filter-name"),
      overridden: document.getElementById("flag-filter-overridden"),
      differs: document.getElementById("flag-filter-differs"),
      count: document.getElementById("flag-filter-count")
    };
  }

  function applyFilter() {
    var parts = filterParts();
    if (!parts) { return; }
    var text = parts.name.value.trim().toLowerCase();
    var rows = document.querySelectorAll("#flags-table tr.flag-row");
    var shown = 0;
    rows.forEach(function (row) {
      var show = (!text || (row.dataset.name || "").indexOf(text) !== -1) &&
        (!parts.overridden.checked || row.dataset.overridden === "true") &&
        (!parts.differs.checked || row.dataset.differs === "true");
      row.hidden = !show;
      var next = row.nextElementSibling;
      if (next && next.classList.contains("why-row")) { next.hidden = !show; }
      if (show) { shown += 1; }
    });
    var none = document.querySelector("#flags-table tr.no-flag-matches");
    if (none) { none.hidden = shown > 0; }
    var total = rows.length;
    var filtering = text || parts.overridden.checked || parts.differs.checked;
    parts.count.textContent = filtering
      ? shown + " of " + total + (total === 1 ? " flag" : " flags")
      : total + (total === 1 ? " flag" : " flags");
  }

  function saveFilter() {
    var parts = filterParts();
    if (!parts || !window.history.replaceState) { return; }
    var params = new URLSearchParams(window.location.search);
    var text = parts.name.value.trim();
    if (text) { params.set("flag", text); } else { params.delete("flag"); }
    if (parts.overridden.checked) { params.set("overridden", "1"); } else { params.delete("overridden"); }
    if (parts.differs.checked) { params.set("differs", "1"); } else { params.delete("differs"); }
    var query = params.toString();
    window.history.replaceState(window.history.state, "",
      window.location.pathname + (query ? "?" + query : "") + window.location.hash);
  }

  function initFilter() {
    var parts = filterParts();
    if (!parts || parts.form.dataset.ready) { return; }
    parts.form.dataset.ready = "true";
    var params = new URLSearchParams(window.location.search);
    parts.name.value = params.get("flag") || "";
    parts.overridden.checked = params.get("overridden") === "1";
    parts.differs.checked = params.get("differs") === "1";
    parts.form.hidden = false;
    parts.form.addEventListener("submit", function (event) { event.preventDefault(); });
    parts.form.addEventListener("input", function () { applyFilter(); saveFilter(); });
    parts.form.addEventListener("change", function () { applyFilter(); saveFilter(); });
    applyFilter();
  }

  document.addEventListener("DOMContentLoaded", initFilter);
  document.addEventListener("htmx:load", function (event) {
    var elt = event.detail.elt;
    if (!elt || !elt.matches) { return; }
    if (elt.matches("tr.why-row")) { showWhy(elt); return; }
    // A flag row re-rendered in place (toggle, edit, option): an open explanation below it
    // would describe the old state, so fetch it again.
    if (elt.matches("tr.flag-row")) {
      var open = elt.nextElementSibling;
      var button = elt.querySelector("button.why");
      if (open && open.matches("tr.why-row") && button && !elt.classList.contains("editing")) {
        open.remove();
        window.htmx.trigger(button, "click");
      }
      return;
    }
    // The whole table was re-rendered (flags-changed) or the page part swapped in.
    if (elt.id === "flags" || elt.id === "identity-page" || elt.querySelector("#flag-filter")) {
      initFilter();
      applyFilter();
    }
  });
})();
