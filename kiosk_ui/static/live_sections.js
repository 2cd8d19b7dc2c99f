// Live sections: parts of a console page marked data-live-section (each with an id) are fetched
// again when the site's state changes (the live feed's "live-status" event) and swapped in place,
// so lists that change during the day (gate decisions, people inside, alarms to acknowledge,
// the roster, registers) follow without a reload. A section someone is typing into waits until
// they leave it; a form sent from a section is sent as usual.
(function () {
  "use strict";
  var sections = function () { return Array.prototype.slice.call(document.querySelectorAll("[data-live-section][id]")); };
  if (!sections().length) { return; }
  window.__sectionPaints = 0;
  var timer = null, busy = false, again = false;

  function typing(section) {
    var el = document.activeElement;
    if (!el || !section.contains(el)) { return false; }
    return /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName) && (el.value !== "" || el.tagName === "SELECT");
  }

  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    fetch(window.location.href, { credentials: "same-origin", headers: { "X-Live-Section": "1" } })
      .then(function (r) { if (!r.ok) { throw new Error(String(r.status)); } return r.text(); })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html");
        sections().forEach(function (section) {
          var next = fresh.getElementById(section.id);
          if (!next) { return; }
          if (typing(section)) { section.setAttribute("data-live-pending", ""); return; }
          if (section.innerHTML !== next.innerHTML) { section.innerHTML = next.innerHTML; }
          section.className = next.className;
          section.hidden = next.hidden;
          section.removeAttribute("data-live-pending");
        });
        window.__sectionPaints += 1;
        document.dispatchEvent(new CustomEvent("live-sections"));
      })
      .catch(function () { /* offline: the indicator says so; the next change tries again */ })
      .then(function () { busy = false; if (again) { again = false; refresh(); } });
  }

  // The snapshot every stream starts with is taken after the page was rendered, perhaps after a
  // change the page missed: it refreshes the sections too (one request per page load).
  // Changes close together share one refresh, which comes at most 300 ms after the first.
  document.addEventListener("live-status", function () {
    if (timer === null) { timer = setTimeout(function () { timer = null; refresh(); }, 300); }
  });
  // A section left with changes waiting: bring it up to date once the person moves on.
  document.addEventListener("focusout", function () {
    setTimeout(function () {
      if (sections().some(function (s) { return s.hasAttribute("data-live-pending") && !typing(s); })) { refresh(); }
    }, 200);
  });
})();
