// Copy buttons: <button data-copy="#selector"> copies the text of the element it names.
// Loaded as a file (the Content-Security-Policy forbids inline scripts).
(function () {
  "use strict";
  function copied(button, ok) {
    var label = button.textContent;
    button.textContent = ok ? "Copied" : "Select and copy it";
    window.setTimeout(function () { button.textContent = label; }, 1500);
  }
  function selectText(element) {
    var range = document.createRange();
    range.selectNodeContents(element);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("button[data-copy]");
    if (!button) { return; }
    var source = document.querySelector(button.getAttribute("data-copy"));
    if (!source) { return; }
    var text = source.textContent;
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(
        function () { copied(button, true); },
        function () { selectText(source); copied(button, false); }
      );
    } else {
      // Plain http (not localhost): no clipboard API; select it for Ctrl+C instead.
      selectText(source);
      copied(button, false);
    }
  });
})();
