// Gate kiosk: follow check-in prompts, the signature pad (also the evaluation terminal's), and
// the result screen's cue.
(function () {
  "use strict";
  // A public kiosk returns to the venue's language once a person is done (their result shown,
  // their check-in ended): true when the page is on its way there.
  var languageReset = document.getElementById("kiosk-language-reset");
  var backToVenueLanguage = function () {
    if (!languageReset || languageReset.getAttribute("data-locale") === languageReset.getAttribute("data-default-locale")) {
      return false;
    }
    languageReset.submit();
    return true;
  };

  // The appliance out of reach for a few seconds: a full-screen "out of service" cover, so
  // nobody is invited to tap a card that nothing reads; lifted as soon as it answers again.
  var paused = document.getElementById("kiosk-paused");
  if (paused) {
    var pauseTimer = null;
    document.addEventListener("live-connection", function (event) {
      if (event.detail) {
        clearTimeout(pauseTimer);
        pauseTimer = null;
        paused.hidden = true;
      } else if (pauseTimer === null && paused.hidden) {
        pauseTimer = setTimeout(function () { pauseTimer = null; paused.hidden = false; }, 3000);
      }
    });
  }

  var idle = document.querySelector("#kiosk-state[data-state=idle]");
  if (idle) {
    var reasons = JSON.parse(idle.getAttribute("data-reasons") || "{}");
    var nextSteps = JSON.parse(idle.getAttribute("data-next-steps") || "{}");
    var roles = JSON.parse(idle.getAttribute("data-roles") || "{}");
    var message = document.getElementById("kiosk-message");
    var person = document.getElementById("kiosk-person"), sub = document.getElementById("kiosk-sub");
    var shownSeq = null, resetTimer = null, looking = false;
    window.__kioskPaints = [];
    var toIdle = function () {
      if (backToVenueLanguage()) { return; }
      idle.setAttribute("data-state", "idle");
      message.textContent = idle.getAttribute("data-idle-text");
      person.hidden = true;
      sub.textContent = idle.getAttribute("data-idle-sub");
      sub.hidden = false;
    };
    var show = function (decision) {
      idle.setAttribute("data-state", decision.allow ? "allowed" : "denied");
      message.textContent = reasons[decision.reason] || decision.reason;
      // Whose result this is (masked), and what to do next.
      var role = decision.role && roles[decision.role];
      person.textContent = [decision.who, role].filter(Boolean).join(" · ");
      person.hidden = !person.textContent;
      sub.textContent = nextSteps[decision.reason] || "";
      sub.hidden = !sub.textContent;
      requestAnimationFrame(function () {
        window.__kioskPaints.push({ seq: decision.seq, reason: decision.reason,
                                    decided_to_painted_ms: Date.now() - Date.parse(decision.ts) });
      });
      if (window.applianceCue) { window.applianceCue(decision.allow); }
      clearTimeout(resetTimer);
      resetTimer = setTimeout(toIdle, 8000);
    };
    var look = function () {
      if (looking) { return; }
      looking = true;
      fetch("/kiosk/prompt", { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (data) {
        looking = false;
        if (data.prompt) { window.location.assign("/kiosk/checkin/" + data.prompt); return; }
        // The latest tap at this gate: a new one, or on arriving here one still fresh (a
        // check-in screen left for it).
        var fresh = shownSeq === null ? data.decision && data.decision.age_s < 8 && !timedOut && !chosen
                                      : data.decision && data.decision.seq > shownSeq;
        if (fresh) { show(data.decision); }
        if (data.decision && (shownSeq === null || data.decision.seq > shownSeq)) { shownSeq = data.decision.seq; }
        if (shownSeq === null) { shownSeq = 0; }
      }).catch(function () { looking = false; });
    };
    // A language chosen here: the screen reloads in it for the person who chose it, not to
    // show again the tap of the one before.
    var chosen = /[?&]language=1/.test(window.location.search);
    document.querySelectorAll("header form.lang").forEach(function (form) {
      form.addEventListener("submit", function () { form.querySelector("input[name=next]").value = "/kiosk/?language=1"; });
    });
    if (chosen) { window.history.replaceState(null, "", "/kiosk/"); }
    var timedOut = idle.hasAttribute("data-timed-out");
    if (timedOut) {  // a check-in left unfinished: say so, then wait for the next person
      idle.setAttribute("data-state", "timeout");
      message.textContent = idle.getAttribute("data-timeout-text");
      resetTimer = setTimeout(toIdle, 8000);
      window.history.replaceState(null, "", "/kiosk/");
    } else if (languageReset && languageReset.getAttribute("data-locale") !== languageReset.getAttribute("data-default-locale")) {
      // Another language chosen and nobody tapped: back to the venue's after a minute.
      resetTimer = setTimeout(toIdle, 60000);
    }
    document.addEventListener("live-status", look);
    look();
  }

  var checkin = document.querySelector(".checkin[data-idle-after]");
  if (checkin) {
    // Nobody touching the screen: a clear "timed out" screen, then idle (the prompt expires on
    // the server too).
    var idleTimer;
    var rearm = function () {
      clearTimeout(idleTimer);
      idleTimer = setTimeout(function () {
        var token = document.querySelector("meta[name=csrf-token]").getAttribute("content");
        var back = function () { window.location.assign("/kiosk/?timeout=1"); };
        fetch("/kiosk/checkin/" + checkin.getAttribute("data-prompt") + "/abandon",
              { method: "POST", credentials: "same-origin", headers: { "X-CSRFToken": token } }).then(back, back);
      }, 1000 * Number(checkin.getAttribute("data-idle-after")));
    };
    ["pointerdown", "keydown", "change"].forEach(function (type) { document.addEventListener(type, rearm); });
    rearm();
    // The gate moved on (this check-in finished or expired elsewhere, or someone else tapped):
    // back to the gate screen, which shows the latest tap.
    var promptId = Number(checkin.getAttribute("data-prompt")), openedSeq = Number(checkin.getAttribute("data-opened-seq"));
    var sending = false;
    var form = document.getElementById("checkin-form");
    if (form) { form.addEventListener("submit", function () { sending = true; }); }
    document.addEventListener("live-status", function () {
      if (sending) { return; }
      fetch("/kiosk/prompt", { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (data) {
        if (sending) { return; }
        if (data.prompt !== promptId || (data.decision && data.decision.seq > openedSeq)) { window.location.assign("/kiosk/"); }
      }).catch(function () { /* offline: the offline screen covers it */ });
    });
  }

  var pad = document.getElementById("signature-pad");
  if (pad) {
    var ctx = pad.getContext("2d");
    var drawing = false, strokes = 0;
    ctx.lineWidth = 4; ctx.lineCap = "round"; ctx.strokeStyle = "#0b1f33";
    ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, pad.width, pad.height);
    var point = function (e) {
      var r = pad.getBoundingClientRect();
      return [(e.clientX - r.left) * pad.width / r.width, (e.clientY - r.top) * pad.height / r.height];
    };
    pad.addEventListener("pointerdown", function (e) { drawing = true; var p = point(e); ctx.beginPath(); ctx.moveTo(p[0], p[1]); });
    pad.addEventListener("pointermove", function (e) { if (!drawing) { return; } var p = point(e); ctx.lineTo(p[0], p[1]); ctx.stroke(); strokes += 1; });
    window.addEventListener("pointerup", function () { drawing = false; });
    document.getElementById("signature-clear").addEventListener("click", function () {
      ctx.fillRect(0, 0, pad.width, pad.height); strokes = 0;
    });
    // The form around the pad (the gate kiosk's commitment, the terminal's report) carries the
    // drawing as a PNG data URL in its "signature" field.
    var form = pad.closest("form");
    form.addEventListener("submit", function (e) {
      if (strokes < 3) { e.preventDefault(); pad.classList.add("missing"); return; }
      form.querySelector("input[name=signature]").value = pad.toDataURL("image/png");
    });
  }

  var result = document.querySelector("#kiosk-state[data-return-after]");
  if (result) {
    if (window.applianceCue) { window.applianceCue(result.getAttribute("data-state") === "allowed"); }
    setTimeout(function () { if (!backToVenueLanguage()) { window.location.assign("/kiosk/"); } },
               1000 * Number(result.getAttribute("data-return-after")));
  }
})();
