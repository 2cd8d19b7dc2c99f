// The monitoring room: each camera's picture reloaded every two seconds (the server decodes at
// most one frame per camera per second, however many screens watch).
(function () {
  "use strict";
  var images = Array.prototype.slice.call(document.querySelectorAll("img.live-frame"));
  window.__liveFrames = 0;
  images.forEach(function (img) {
    var note = img.parentElement.querySelector(".live-note");
    img.addEventListener("load", function () {
      window.__liveFrames += 1;
      img.classList.remove("stale");
      note.hidden = true;
    });
    img.addEventListener("error", function () {  // no fresh picture (503): say so, not a black tile
      img.classList.add("stale");
      note.hidden = false;
    });
  });
  function refresh() {
    images.forEach(function (img) { img.src = img.dataset.src + "?t=" + Date.now(); });
  }
  refresh();
  setInterval(refresh, 2000);
})();
