// The center's session page: "play" puts a segment in the player; a segment that cannot be
// played says so instead of a black box.
(function () {
  "use strict";
  var player = document.getElementById("center-player");
  if (!player) { return; }
  var error = document.getElementById("center-player-error");
  player.addEventListener("error", function () { error.hidden = false; });
  document.querySelectorAll("a[data-play]").forEach(function (link) {
    link.addEventListener("click", function (event) {
      event.preventDefault();
      error.hidden = true;
      player.src = link.getAttribute("href");
      player.play().catch(function () { /* the browser wants a click first: the controls are there */ });
    });
  });
})();
