// Alarms pushed to every page of the province (server-sent events): a banner names the venue
// and the alarm at once; EventSource reconnects by itself (Last-Event-ID: none are missed).
(function () {
  var banner = document.getElementById('alarm-banner');
  if (!banner || !window.EventSource) { return; }
  var text = banner.querySelector('.text');
  var source = new EventSource(banner.dataset.stream);
  source.addEventListener('alarm', function (event) {
    var alarm = JSON.parse(event.data);
    text.textContent = alarm.venue + ' · ' + alarm.words + (alarm.count > 1 ? ' ×' + alarm.count : '');
    banner.hidden = false;
    banner.dataset.alarm = String(alarm.id);
  });
})();
