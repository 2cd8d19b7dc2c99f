// Gate kiosk: follow check-in prompts, the signature pad (also the evaluation terminal's), and
// the result screen's cue.
(function () {
  "use strict";
  var idle = document.querySelector("#kiosk-state[data-state=idle]");
  if (idle) {
    var reasons = JSON.parse(idle.getAttribute("data-reasons") || "{}");
    var message = document.getElementById("kiosk-message");
    var shownSeq = null, resetTimer = null, looking = false;
    window.__kioskPaints = [];
    var show = function (decision) {
      idle.setAttribute("data-state", decision.allow ? "allowed" : "denied");
      message.textContent = reasons[decision.reason] || decision.reason;
      requestAnimationFrame(function () {
        window.__kioskPaints.push({ seq: decision.seq, reason: decision.reason,
                                    decided_to_painted_ms: Date.now() - Date.parse(decision.ts) });
      });
      if (window.applianceCue) { window.applianceCue(decision.allow); }
      clearTimeout(resetTimer);
      resetTimer = setTimeout(function () {
        idle.setAttribute("data-state", "idle");
        message.textContent = idle.getAttribute("data-idle-text");
      }, 8000);
    };
    var look = function () {
      if (looking) { return; }
      looking = true;
      fetch("/kiosk/prompt", { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (data) {
        looking = false;
        if (data.prompt) { window.location.assign("/kiosk/checkin/" + data.prompt); return; }
        // The latest tap at this gate: a new one, or on arriving here one still fresh (a
        // check-in screen left for it).
        var fresh = shownSeq === null ? data.decision && data.decision.age_s < 8 && !timedOut
                                      : data.decision && data.decision.seq > shownSeq;
        if (fresh) { show(data.decision); }
        if (data.decision && (shownSeq === null || data.decision.seq > shownSeq)) { shownSeq = data.decision.seq; }
        if (shownSeq === null) { shownSeq = 0; }
      }).catch(function () { looking = false; });
    };
    var timedOut = idle.hasAttribute("data-timed-out");
    if (timedOut) {  // a check-in left unfinished: say so, then wait for the next person
      idle.setAttribute("data-state", "timeout");
      message.textContent = idle.getAttribute("data-timeout-text");
      resetTimer = setTimeout(function () {
        idle.setAttribute("data-state", "idle");
        message.textContent = idle.getAttribute("data-idle-text");
      }, 8000);
      window.history.replaceState(null, "", "/kiosk/");
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
    setTimeout(function () { window.location.assign("/kiosk/"); }, 1000 * Number(result.getAttribute("data-return-after")));
  }
})();
