// Small behaviours the pages share. No inline scripts anywhere: the CSP forbids them.
(function () {
  "use strict";

  function showToast(level, message, action) {
    var box = document.getElementById("toasts");
    if (!box) { return; }
    var toast = document.createElement("div");
    toast.className = "toast toast-" + (level || "info");
    toast.setAttribute("role", "status");
    var text = document.createElement("span");
    text.textContent = message;
    toast.appendChild(text);
    if (action) { toast.appendChild(action); }
    var close = document.createElement("button");
    close.type = "button";
    close.className = "toast-close";
    close.setAttribute("aria-label", "Dismiss");
    close.textContent = "×";
    close.addEventListener("click", function () { toast.remove(); });
    toast.appendChild(close);
    box.appendChild(toast);
    // An error stays until dismissed; a toast with an action (Undo) for a minute, others for
    // 20 s, counted only while it is neither pointed at nor focused: nobody loses one mid-read.
    if (level !== "error") { fadeWhenUnused(toast, action ? 60000 : 20000); }
  }

  function fadeWhenUnused(toast, ms) {
    var timer = null;
    function start() { stop(); timer = setTimeout(function () { toast.remove(); }, ms); }
    function stop() { if (timer) { clearTimeout(timer); timer = null; } }
    toast.addEventListener("mouseenter", stop);
    toast.addEventListener("focusin", stop);
    toast.addEventListener("mouseleave", function () { if (!toast.contains(document.activeElement)) { start(); } });
    toast.addEventListener("focusout", function (event) {
      if (!toast.contains(event.relatedTarget) && !toast.matches(":hover")) { start(); }
    });
    start();
  }
  window.flagpostToast = showToast;

  // Servers send HX-Trigger: {"show-message": {"level", "message"}} for errors htmx won't swap.
  document.addEventListener("show-message", function (event) {
    var detail = event.detail || {};
    showToast(detail.level, detail.message);
  });

  // A network failure or an unswapped 5xx must never fail silently.
  document.addEventListener("htmx:sendError", function () {
    showToast("error", "The server could not be reached. Check your connection and retry.");
  });
  document.addEventListener("htmx:responseError", function (event) {
    var xhr = event.detail.xhr;
    if (xhr && xhr.status >= 500) {
      showToast("error", "Something went wrong on the server (" + xhr.status + ").");
    }
  });

  // Plain forms carrying data-confirm ask before submitting (htmx elements use hx-confirm).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) { event.preventDefault(); }
  }, true);
})();
