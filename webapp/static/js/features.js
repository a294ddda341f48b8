// Features page behaviours. No inline scripts: the CSP forbids them.
(function () {
  "use strict";

  // A 409 from the priority list carries the current order and a "changed since you opened
  // it" message; swap it in (htmx only swaps 2xx and 422 by default).
  document.addEventListener("htmx:beforeSwap", function (event) {
    var xhr = event.detail.xhr;
    var target = event.detail.target;
    if (xhr && xhr.status === 409 && target && target.id === "segment-overrides") {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  // Drag and drop of segment overrides progressively enhances the up/down buttons: it
  // submits the same form with the full new order as the "order" value.
  var dragged = null;

  function rowOf(node) {
    return node && node.closest ? node.closest("tr.segment-override[draggable=true]") : null;
  }

  function clearTargets() {
    document.querySelectorAll("tr.segment-override.drop-target").forEach(function (row) {
      row.classList.remove("drop-target");
    });
  }

  document.addEventListener("dragstart", function (event) {
    var row = rowOf(event.target);
    if (!row) { return; }
    dragged = row;
    row.classList.add("dragging");
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", row.dataset.overrideId);
  });

  document.addEventListener("dragover", function (event) {
    var row = rowOf(event.target);
    if (!dragged || !row || row === dragged) { return; }
    event.preventDefault();
    clearTargets();
    row.classList.add("drop-target");
  });

  document.addEventListener("dragend", function () {
    if (dragged) { dragged.classList.remove("dragging"); }
    dragged = null;
    clearTargets();
  });

  document.addEventListener("drop", function (event) {
    var row = rowOf(event.target);
    if (!dragged || !row || row === dragged) { return; }
    event.preventDefault();
    var body = row.parentNode;
    var rows = Array.prototype.slice.call(body.querySelectorAll("tr.segment-override"));
    var before = rows.indexOf(row) < rows.indexOf(dragged);
    body.insertBefore(dragged, before ? row : row.nextSibling);
    var order = Array.prototype.map.call(body.querySelectorAll("tr.segment-override"), function (r) {
      return r.dataset.overrideId;
    }).join(",");
    var form = document.getElementById("segment-overrides-form");
    var submitter = document.createElement("button");
    submitter.type = "submit";
    submitter.name = "order";
    submitter.value = order;
    submitter.hidden = true;
    form.appendChild(submitter);
    form.requestSubmit(submitter);
  });

  // Keep the allocation legend's control share in step with the inputs before saving.
  document.addEventListener("input", function (event) {
    if (!event.target.classList || !event.target.classList.contains("allocation-input")) { return; }
    var total = 0;
    document.querySelectorAll(".allocation-input").forEach(function (input) {
      var number = parseFloat(input.value);
      if (isFinite(number)) { total += number; }
    });
    var control = document.getElementById("control-percentage");
    if (control) {
      control.textContent = total > 100 ? "over 100%! " + (100 - total).toFixed(2)
                                         : String(Math.round((100 - total) * 1000) / 1000);
    }
  });
})();
