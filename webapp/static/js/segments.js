// Segments rule builder: live chips for IN values (no inline handlers: the CSP forbids them).
(function () {
  "use strict";
  function renderChips(input) {
    var chips = input.parentElement.querySelector(".chips");
    if (!chips) { return; }
    chips.textContent = "";
    if (input.value.charAt(0) === "[") { return; }
    input.value.split(",").forEach(function (text) {
      if (!text) { return; }
      var chip = document.createElement("span");
      chip.className = "chip";
      chip.textContent = text;
      chips.appendChild(chip);
    });
  }
  document.addEventListener("input", function (event) {
    var target = event.target;
    if (target instanceof HTMLInputElement && target.classList.contains("in-list")) {
      renderChips(target);
    }
  });
})();
