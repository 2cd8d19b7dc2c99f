// The session's footage: segments listed in the table (data-start/data-end in ms since the epoch),
// one <video>; clicking a timeline event loads the segment of that moment and seeks to it.
(function () {
  "use strict";
  var video = document.getElementById("player");
  if (!video) { return; }
  var rows = Array.prototype.slice.call(document.querySelectorAll("tr.segment"));
  var segments = rows.map(function (tr) {
    return { id: tr.dataset.id, camera: tr.dataset.camera, label: tr.dataset.cameraLabel || tr.dataset.camera, url: tr.dataset.url,
             start: Number(tr.dataset.start), end: Number(tr.dataset.end), row: tr };
  });
  var current = null;
  var position = document.getElementById("player-position");
  var failed = document.getElementById("player-error");
  video.addEventListener("error", function () { failed.hidden = false; });
  video.addEventListener("loadeddata", function () { failed.hidden = true; });
  window.__reviewSeeks = [];

  function find(ms, camera) {
    var inCamera = segments.filter(function (s) { return !camera || s.camera === camera; });
    return inCamera.filter(function (s) { return s.start <= ms && ms < s.end; })[0] || null;
  }

  function show(ms) {
    var seg = find(ms, current && current.camera) || find(ms, null);
    if (!seg) { position.textContent = position.dataset.textNone; return false; }
    var offset = (ms - seg.start) / 1000;
    segments.forEach(function (s) { s.row.classList.toggle("playing", s === seg); });
    var seek = function () {
      video.currentTime = offset;
      window.__reviewSeeks.push({ segment: seg.id, offset: offset });
    };
    if (current !== seg) {
      current = seg;
      video.src = seg.url;
      video.addEventListener("loadedmetadata", seek, { once: true });
    } else {
      seek();
    }
    video.play().catch(function () { /* autoplay may be refused: the frame is shown */ });
    return true;
  }

  function moment() {
    return current ? current.start + Math.round(video.currentTime * 1000) : null;
  }

  video.addEventListener("timeupdate", function () {
    var ms = moment();
    if (ms !== null) {
      position.textContent = current.label + " · " + new Date(ms).toLocaleTimeString("en-GB", { hour12: false, timeZone: "Asia/Shanghai" });
    }
  });
  video.addEventListener("ended", function () {  // play on into the next segment of the camera
    var next = current && find(current.end + 1, current.camera);
    if (next) { show(next.start); }
  });
  document.querySelectorAll("#timeline li.event a.jump").forEach(function (a) {
    a.addEventListener("click", function (event) {
      event.preventDefault();
      document.querySelectorAll("#timeline li.selected").forEach(function (li) { li.classList.remove("selected"); });
      a.parentElement.classList.add("selected");
      show(Number(a.parentElement.dataset.ms));
    });
  });
  document.querySelectorAll("a.play-segment").forEach(function (a) {
    a.addEventListener("click", function (event) {
      event.preventDefault();
      show(Number(a.closest("tr").dataset.start));
    });
  });
  var form = document.getElementById("bookmark-form");
  if (form) {
    form.addEventListener("submit", function (event) {
      var ms = moment();
      if (ms === null) { event.preventDefault(); return; }
      document.getElementById("bookmark-at").value = String(ms);
      document.getElementById("bookmark-camera").value = current.camera;
    });
  }
  if (segments.length) { current = null; show(segments[0].start); }
})();
