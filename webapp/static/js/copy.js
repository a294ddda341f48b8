// Copy buttons: <button data-copy="#selector" hidden> copies the value of the input (or the
// text of the element) it names; data-copied="…" also says so in a toast. Loaded as a file
// (the Content-Security-Policy forbids inline scripts).
// The buttons are rendered hidden and shown by this script once it can answer them: a button
// pressed before its deferred script had run (a slow connection, a quick hand) did nothing.
(function () {
  "use strict";
  function copied(button, ok) {
    var label = button.textContent;
    button.textContent = ok ? "Copied" : "Select and copy it";
    window.setTimeout(function () { button.textContent = label; }, 1500);
    var message = button.getAttribute("data-copied");
    if (ok && message && window.flagpostToast) { window.flagpostToast("info", message); }
  }
  function select(source) {
    if (source.matches("input, textarea")) { source.select(); return; }
    var range = document.createRange();
    range.selectNodeContents(source);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("button[data-copy]");
    if (!button) { return; }
    var source = document.querySelector(button.getAttribute("data-copy"));
    if (!source) { return; }
    var text = source.matches("input, textarea") ? source.value : source.textContent;
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(
        function () { copied(button, true); },
        function () { select(source); copied(button, false); }
      );
    } else {
      // Plain http (not localhost): no clipboard API; select it for Ctrl+C instead.
      select(source);
      copied(button, false);
    }
  });
  function reveal(root) {
    root.querySelectorAll("button[data-copy][hidden]").forEach(function (button) {
      button.hidden = false;
    });
  }
  reveal(document);
  // Content htmx swaps in later (a new server key) may carry copy buttons too.
  document.addEventListener("htmx:load", function (event) {
    if (event.target && event.target.querySelectorAll) { reveal(event.target); }
  });
})();
