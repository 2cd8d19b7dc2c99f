// Evaluation terminal: follow the evaluation (reload when what this terminal shows has changed,
// unless the member is typing), "mark every item pass" for a pass/fail step, the reopening
// form's step, and the idle screen's message after a refused card tap.
(function () {
  "use strict";
  var root = document.getElementById("terminal");
  if (!root) { return; }
  var fingerprint = root.getAttribute("data-fingerprint");
  var dirty = false, looking = false;
  var moved = document.getElementById("moved-on");

  var touched = function () { dirty = true; };
  document.querySelectorAll("form input, form textarea, form select").forEach(function (el) {
    if (el.type !== "hidden") { el.addEventListener("input", touched); el.addEventListener("change", touched); }
  });
  var pad = document.getElementById("signature-pad");
  if (pad) { pad.addEventListener("pointerdown", touched); }
  document.querySelectorAll("form").forEach(function (form) {
    form.addEventListener("submit", function () { dirty = false; });
  });

  var look = function () {
    if (looking) { return; }
    looking = true;
    fetch("/evaluation/state", { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (data) {
      looking = false;
      if (data.fingerprint === fingerprint) { return; }
      if (dirty) { if (moved) { moved.hidden = false; } return; }
      window.location.assign("/evaluation/");
    }).catch(function () { looking = false; });
  };
  document.addEventListener("live-status", look);
  setInterval(look, 1000);  // the live stream wakes us; this is the fallback (a state check costs about 3 ms)

  var allPass = document.getElementById("all-pass");
  if (allPass) {
    allPass.addEventListener("click", function () {
      document.querySelectorAll("#marks-form input[type=radio][value=pass]").forEach(function (r) { r.checked = true; });
      dirty = true;
    });
  }

  var reopen = document.getElementById("reopen-form");
  if (reopen) {
    var step = document.getElementById("reopen-step");
    step.addEventListener("change", function () {
      reopen.action = reopen.getAttribute("data-action").replace("STEP", encodeURIComponent(step.value));
    });
  }

  var tap = document.getElementById("tap-message");
  if (tap) {
    // Show a refused tap once, for a few seconds: not again on a later reload.
    var seq = tap.getAttribute("data-seq");
    if (window.sessionStorage.getItem("terminal-tap") !== seq) {
      window.sessionStorage.setItem("terminal-tap", seq);
      tap.hidden = false;
      if (window.applianceCue) { window.applianceCue(false); }
      setTimeout(function () { tap.hidden = true; }, 8000);
    }
  }
})();
