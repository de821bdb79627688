/* gisgrid intake form: click the map (or find an address) to place the case; a marker shows the point.
 * Text from the server reaches the page through textContent only. */
(function () {
  'use strict';
  var cfg = window.ggIntake || {};
  var map = cfg.map ? window[cfg.map] : null;
  var lon = document.getElementById('gg-lon');
  var lat = document.getElementById('gg-lat');
  var msg = document.getElementById('gg-find-msg');
  var marker = null;

  function place(x, y, fly) {
    lon.value = Number(x).toFixed(7);
    lat.value = Number(y).toFixed(7);
    if (!map) return;
    if (marker) marker.setLatLng([y, x]);
    else marker = L.marker([y, x], {title: 'case'}).addTo(map);
    if (fly) map.setView([y, x], Math.max(map.getZoom(), 17));
  }
  if (map) {
    map.on('click', function (e) {
      place(e.latlng.lng, e.latlng.lat, false);
      msg.textContent = cfg.text.picked;
    });
    if (lon.value && lat.value) place(lon.value, lat.value, true);
    /* coordinates typed (or read off a GPS) move the marker too */
    [lon, lat].forEach(function (input) {
      input.addEventListener('change', function () {
        var x = parseFloat(lon.value), y = parseFloat(lat.value);
        if (isFinite(x) && isFinite(y) && Math.abs(x) <= 180 && Math.abs(y) <= 90) place(x, y, true);
      });
    });
  }
  var find = document.getElementById('gg-find');
  if (find) {
    find.addEventListener('click', function () {
      var address = document.getElementById('gg-address').value.trim();
      if (!address) return;
      fetch(cfg.geocode + '?address=' + encodeURIComponent(address), {credentials: 'same-origin'})
        .then(function (r) { return r.json().then(function (body) { return {ok: r.ok, body: body}; }); })
        .then(function (res) {
          if (!res.ok) { msg.textContent = cfg.text.notFound + ' ' + (res.body.detail || ''); return; }
          place(res.body.lon, res.body.lat, true);
          msg.textContent = cfg.text.found.replace('%(what)s', res.body.matched || address);
        })
        .catch(function (err) { msg.textContent = String(err); });
    });
  }
})();
