// Pages that show a moving process (the committee's progress): reload when the site's state
// changes, a second after the last change, unless someone is typing into a form on the page.
(function () {
  "use strict";
  var root = document.getElementById("follow-live");
  if (!root) { return; }
  var typing = false, timer = null, first = true;
  root.querySelectorAll("input, textarea, select").forEach(function (el) {
    el.addEventListener("input", function () { typing = true; });
  });
  document.addEventListener("live-status", function () {
    if (first) { first = false; return; }  // the snapshot every stream starts with
    clearTimeout(timer);
    timer = setTimeout(function () { if (!typing) { window.location.reload(); } }, 1000);
  });
})();
