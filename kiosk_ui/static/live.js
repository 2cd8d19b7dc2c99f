// Live updates: one EventSource per screen; elements say what they show.
//   data-live="journal.records"  -> textContent from the snapshot path
//   data-live-services           -> the services table body
//   data-live-clock              -> clock synchronisation status
//   data-clock                   -> a ticking clock, corrected by the server's time
// Each paint is timed (event appended -> painted) into window.__liveLatencies for the
// benchmark; a kiosk result plays a short tone (see cue()).
(function () {
  "use strict";
  var offsetMs = 0;
  window.__liveLatencies = [];
  window.__liveEvents = 0;

  function get(obj, path) {
    return path.split(".").reduce(function (o, k) { return o == null ? o : o[k]; }, obj);
  }

  // A service's detail is a message key with its numbers ("sync_ok {\"acked\": 3}"): worded
  // from the page's labels, whose templates carry %(name)s for each number.
  function detailText(detail, labels) {
    if (!detail) { return ""; }
    var space = detail.indexOf(" "), key = space < 0 ? detail : detail.slice(0, space);
    if (!labels[key]) { return labels[detail] || detail; }
    var params = {};
    try { params = space < 0 ? {} : JSON.parse(detail.slice(space + 1)); } catch (e) { return detail; }
    return labels[key].replace(/%\((\w+)\)s/g, function (m, name) { return params[name] === undefined ? m : String(params[name]); });
  }

  function paintServices(tbody, services) {
    var labels = JSON.parse(tbody.getAttribute("data-labels") || "{}");
    while (tbody.firstChild) { tbody.removeChild(tbody.firstChild); }
    services.forEach(function (s) {
      var tr = document.createElement("tr");
      tr.className = "state-" + s.state;
      var beat = new Date(s.heartbeat).toLocaleTimeString("en-GB", { hour12: false, timeZone: "Asia/Shanghai" });
      [labels[s.name] || s.name, labels[s.state] || s.state, detailText(s.detail, labels), beat].forEach(function (text) {
        var td = document.createElement("td");
        td.textContent = text;
        tr.appendChild(td);
      });
      tbody.appendChild(tr);
    });
  }

  function paintDevices(tbody, devices) {
    if (!devices.length) { return; }
    var labels = JSON.parse(tbody.getAttribute("data-labels") || "{}");
    while (tbody.firstChild) { tbody.removeChild(tbody.firstChild); }
    devices.forEach(function (d) {
      var tr = document.createElement("tr");
      tr.className = d.state === "connected" ? "state-running" : "state-failed";
      [d.label || d.name, labels[d.kind] || d.kind, labels[d.state] || d.state, labels[d.detail] || d.detail].forEach(function (text) {
        var td = document.createElement("td");
        td.textContent = text;
        tr.appendChild(td);
      });
      tbody.appendChild(tr);
    });
  }

  var knownAlarms = null;

  function paintAlarms(list, alarms) {
    // Open alarms, newest first; a new one sounds the low tone once.
    var labels = JSON.parse(list.getAttribute("data-labels") || "{}");
    var link = list.getAttribute("data-link");
    var seen = {};
    while (list.firstChild) { list.removeChild(list.firstChild); }
    alarms.forEach(function (a) {
      seen[a.id] = true;
      var li = document.createElement("li");
      li.className = "alarm";
      var when = new Date(a.raised).toLocaleTimeString("en-GB", { hour12: false, timeZone: "Asia/Shanghai" });
      var text = when + " " + (labels[a.kind] || a.kind) + (a.section ? " · " + a.section : "") + (a.person ? " · " + a.person : "");
      if (link) {
        var anchor = document.createElement("a");
        anchor.href = link + "#alarm-" + a.id;
        anchor.textContent = text;
        li.appendChild(anchor);
      } else {
        li.textContent = text;
      }
      list.appendChild(li);
    });
    if (!alarms.length) {
      var none = document.createElement("li");
      none.className = "muted";
      none.textContent = list.getAttribute("data-empty");
      list.appendChild(none);
    }
    var fresh = knownAlarms !== null && alarms.some(function (a) { return !knownAlarms[a.id]; });
    knownAlarms = seen;
    list.closest("section").classList.toggle("alarming", alarms.length > 0);
    if (fresh) { window.applianceCue(false); }
  }

  function paintClock(el, clock) {
    var key = clock.synchronized === null ? "unknown" : (clock.synchronized ? "synced" : "unsynced");
    el.textContent = el.getAttribute("data-text-" + key);
    el.classList.toggle("bad", key === "unsynced");
  }

  function paint(snapshot) {
    document.querySelectorAll("[data-live]").forEach(function (el) {
      var value = get(snapshot, el.getAttribute("data-live"));
      if (value !== undefined && value !== null) { el.textContent = String(value); }
    });
    document.querySelectorAll("[data-live-services]").forEach(function (el) { paintServices(el, snapshot.services); });
    document.querySelectorAll("[data-live-clock]").forEach(function (el) { paintClock(el, snapshot.clock); });
    document.querySelectorAll("[data-live-devices]").forEach(function (el) { paintDevices(el, snapshot.devices || []); });
    if (snapshot.alarms) {
      document.querySelectorAll("[data-live-alarms]").forEach(function (el) { paintAlarms(el, snapshot.alarms); });
    }
  }

  function indicator(online) {
    var el = document.querySelector("[data-live-indicator]");
    if (!el) { return; }
    el.classList.toggle("online", online);
    el.classList.toggle("offline", !online);
    el.querySelector(".text").textContent = el.getAttribute(online ? "data-text-online" : "data-text-offline");
    document.dispatchEvent(new CustomEvent("live-connection", { detail: online }));
  }

  function tick() {
    var now = new Date(Date.now() + offsetMs);
    var text = now.toLocaleTimeString(document.documentElement.lang, { hour12: false, timeZone: "Asia/Shanghai" });
    document.querySelectorAll("[data-clock]").forEach(function (el) { el.textContent = text; });
  }

  window.applianceCue = function cue(ok) {
    // An audible cue for kiosk results: a rising tone for "allowed", a low one for "denied".
    try {
      var ctx = new (window.AudioContext || window.webkitAudioContext)();
      var osc = ctx.createOscillator();
      var gain = ctx.createGain();
      osc.frequency.value = ok ? 880 : 220;
      gain.gain.value = 0.2;
      osc.connect(gain); gain.connect(ctx.destination);
      osc.start(); osc.stop(ctx.currentTime + 0.25);
    } catch (e) { /* no audio device: the screen still shows the result */ }
  };

  var source = new EventSource("/api/v1/events");
  source.addEventListener("open", function () { indicator(true); });
  source.addEventListener("error", function () { indicator(false); });
  source.addEventListener("status", function (event) {
    var snapshot = JSON.parse(event.data);
    offsetMs = snapshot.emitted * 1000 - Date.now();
    paint(snapshot);
    window.__liveEvents += 1;
    document.dispatchEvent(new CustomEvent("live-status", { detail: snapshot }));
    requestAnimationFrame(function () {
      var painted = Date.now();
      if (snapshot.journal && snapshot.journal.head_ts) {
        window.__liveLatencies.push({
          seq: snapshot.journal.records,
          appended_to_painted_ms: painted - Date.parse(snapshot.journal.head_ts),
          emitted_to_painted_ms: painted - snapshot.emitted * 1000
        });
      }
    });
  });
  tick();
  setInterval(tick, 1000);
})();
