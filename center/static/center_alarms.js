// Alarms pushed to every page of the province (server-sent events): a banner names the venue
// and the alarm at once. EventSource reconnects by itself after a dropped stream (Last-Event-ID:
// none are missed); when the worker turns it away (503, all its live streams taken), this page
// tries again a little later.
(function () {
  var banner = document.getElementById('alarm-banner');
  if (!banner || !window.EventSource) { return; }
  var text = banner.querySelector('.text');
  var last = '';

  function connect() {
    var source = new EventSource(banner.dataset.stream + (last ? '?after=' + encodeURIComponent(last) : ''));
    source.addEventListener('alarm', function (event) {
      var alarm = JSON.parse(event.data);
      last = event.lastEventId || last;
      text.textContent = alarm.venue + ' · ' + alarm.words + (alarm.count > 1 ? ' ×' + alarm.count : '');
      banner.hidden = false;
      banner.dataset.alarm = String(alarm.id);
    });
    source.addEventListener('error', function () {
      if (source.readyState === EventSource.CLOSED) {
        setTimeout(connect, 15000);
      }
    });
  }
  connect();
})();
