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

  // htmx sends a submit button's name=value only for the button it saw clicked (it does not
  // read SubmitEvent.submitter), so a script-made submitter sent no "order" at all and the
  // server answered "This field is required.". Send the order as a form field instead, kept
  // until this request ends (htmx may queue it behind one in flight and read it later).
  function submitOrder(order) {
    var form = document.getElementById("segment-overrides-form");
    if (!form) { return; }
    form.querySelectorAll("input.dragged-order").forEach(function (old) { old.remove(); });
    var field = document.createElement("input");
    field.type = "hidden";
    field.name = "order";
    field.className = "dragged-order";
    field.value = order;
    form.appendChild(field);
    // A leftover field would be sent again, before an arrow's own value, by the next click.
    form.addEventListener("htmx:afterRequest", function () { field.remove(); }, { once: true });
    form.requestSubmit();
  }

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
    submitOrder(order);
  });

  // Keyboard reordering: the list is re-rendered after each move, so put the focus back on
  // the moved row's arrow (or its other arrow once it reaches the top or bottom), letting a
  // person press Enter or Space again to keep moving the same row.
  var movedFocus = null;
  document.addEventListener("htmx:beforeRequest", function (event) {
    var active = document.activeElement;
    var form = event.detail.elt;
    movedFocus = null;
    if (!form || form.id !== "segment-overrides-form" || !active || !form.contains(active)) { return; }
    var row = active.closest("tr.segment-override");
    if (row && active.matches("button.move-up, button.move-down")) {
      movedFocus = { row: row.id, up: active.classList.contains("move-up") };
    }
  });
  document.addEventListener("htmx:afterSettle", function () {
    if (!movedFocus) { return; }
    // Only focus that the swap took away is put back: a person who has gone on to another
    // field or button while the request was out keeps it.
    var active = document.activeElement;
    if (active && active !== document.body && document.contains(active)) { movedFocus = null; return; }
    var row = document.getElementById(movedFocus.row);
    var wanted = movedFocus.up ? "button.move-up" : "button.move-down";
    var other = movedFocus.up ? "button.move-down" : "button.move-up";
    movedFocus = null;
    if (!row) { return; }
    var button = row.querySelector(wanted + ":not([disabled])") || row.querySelector(other);
    if (button) { button.focus(); }
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
