// Live pages: when the environment changes, refresh the parts of the page that show it and
// say quietly who changed what. A part being edited (an open inline editor, a form with
// unsaved input, ticked rows) is never refreshed: its editor says that the object changed
// (the optimistic version check refuses the stale save anyway).
(function () {
  "use strict";

  // The stream's URL carries a signed token; no cookie is needed, so none is sent.
  htmx.createEventSource = function (url) {
    return new EventSource(url);
  };

  var NOTICE_SECONDS = 10;
  var hideTimer = null;

  function editorsIn(region) {
    if (region.matches("[data-live-editor]")) {
      return [region];
    }
    return Array.prototype.slice.call(region.querySelectorAll("[data-live-editor]"));
  }

  function isBeingEdited(region) {
    if (editorsIn(region).length) {
      return true;
    }
    if (region.querySelector("input[type=checkbox]:checked:not([data-live-ignore])")) {
      return true;
    }
    var focused = document.activeElement;
    return Boolean(focused && focused !== document.body && region.contains(focused) &&
      /^(INPUT|TEXTAREA|SELECT)$/.test(focused.tagName) && focused.type !== "search");
  }

  function who(change) {
    return change.by ? String(change.by) : "Someone";
  }

  function markChanged(region, change) {
    var editors = editorsIn(region);
    var targets = editors.length ? editors : [region];
    targets.forEach(function (editor) {
      // An editor that names its object only hears about changes to that object.
      var object = editor.getAttribute("data-live-object");
      if (object !== null && object !== String(change.object || "")) {
        return;
      }
      var note = editor.querySelector(".live-stale");
      if (!note) {
        note = document.createElement("p");
        note.className = "live-stale";
        note.setAttribute("role", "status");
        editor.insertBefore(note, editor.firstChild);
      }
      note.textContent = who(change) + " changed this just now. Saving will be refused: " +
        "cancel or reload to see the new version.";
    });
  }

  function showNotice(change) {
    var notice = document.getElementById("live-notice");
    if (!notice) {
      return;
    }
    var what = change.object ? " " + String(change.object) : " this";
    notice.textContent = who(change) + " changed" + what + " just now.";
    notice.hidden = false;
    window.clearTimeout(hideTimer);
    hideTimer = window.setTimeout(function () {
      notice.hidden = true;
    }, NOTICE_SECONDS * 1000);
  }

  document.addEventListener("htmx:sseMessage", function (event) {
    var live = document.getElementById("live");
    if (!live || !live.contains(event.target)) {
      return;
    }
    var change;
    try {
      change = JSON.parse(event.detail.data);
    } catch (error) {
      return;
    }
    var mine = String(change.by_id) === live.dataset.user;
    document.querySelectorAll("[data-live-region]").forEach(function (region) {
      if (isBeingEdited(region)) {
        if (!mine) {
          markChanged(region, change);
        }
      } else {
        htmx.trigger(region, "live-refresh");
      }
    });
    if (!mine) {
      showNotice(change);
    }
  });
})();
