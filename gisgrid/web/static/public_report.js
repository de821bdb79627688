/* The public report page: tap the map or use the GPS to set the place; a marker shows it.
 * Text reaches the page through textContent only. */
(function () {
  'use strict';
  var cfg = window.ggPublic || {};
  var map = cfg.map ? window[cfg.map] : null;
  var lon = document.getElementById('gg-lon');
  var lat = document.getElementById('gg-lat');
  var where = document.getElementById('gg-where');
  var marker = null;

  function place(x, y, fly) {
    lon.value = Number(x).toFixed(7);
    lat.value = Number(y).toFixed(7);
    if (!map) return;
    if (marker) marker.setLatLng([y, x]);
    else marker = L.circleMarker([y, x], {radius: 10, color: '#fff', weight: 2, fillColor: '#b71c1c', fillOpacity: 1,
                                          className: 'gg-public-marker'}).addTo(map);
    if (fly) map.setView([y, x], Math.max(map.getZoom(), 17));
  }
  if (map) {
    map.on('click', function (e) { place(e.latlng.lng, e.latlng.lat, false); where.textContent = cfg.text.picked; });
    if (lon.value && lat.value) place(lon.value, lat.value, true);
  }
  document.getElementById('gg-gps').addEventListener('click', function () {
    if (!navigator.geolocation) { where.textContent = cfg.text.noGps; return; }
    navigator.geolocation.getCurrentPosition(function (pos) {
      place(pos.coords.longitude, pos.coords.latitude, true);
      where.textContent = cfg.text.located.replace('{m}', Math.round(pos.coords.accuracy));
    }, function () { where.textContent = cfg.text.noGps; }, {enableHighAccuracy: true, timeout: 15000});
  });
  document.getElementById('gg-public-form').addEventListener('submit', function (e) {
    if (!lon.value || !lat.value) { e.preventDefault(); where.textContent = cfg.text.needPlace; }
  });
})();
