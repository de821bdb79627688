/* gisgrid case lists: the owner box suggests people as you type (name · #number · places), so that two
 * people of one name stay apart; the server reads the number back.  Labels are set as text only. */
(function () {
  'use strict';
  var box = document.getElementById('gg-owner');
  var list = document.getElementById('gg-owner-list');
  if (!box || !list || !window.fetch) return;
  var timer = null, asked = '';
  box.addEventListener('input', function () {
    clearTimeout(timer);
    timer = setTimeout(function () {
      var q = box.value.trim();
      if (!q || q === asked || q.indexOf('#') >= 0) return;
      asked = q;
      fetch(box.dataset.url + '?q=' + encodeURIComponent(q), {credentials: 'same-origin'})
        .then(function (r) { return r.ok ? r.json() : {people: []}; })
        .then(function (body) {
          while (list.firstChild) list.removeChild(list.firstChild);
          (body.people || []).forEach(function (p) {
            var option = document.createElement('option');
            option.value = p.label;
            list.appendChild(option);
          });
        })
        .catch(function () { /* offline: typing a whole name still works */ });
    }, 200);
  });
})();

/* The area map: draw a polygon (vendored Leaflet-Geoman); its WKT goes into the filter form's hidden
 * "area" field, so that the list and its XLSX/GeoJSON exports keep only the cases inside it. */
(function () {
  'use strict';
  var box = document.getElementById('gg-area-box');
  var field = document.getElementById('gg-area');
  var holder = document.getElementById('gg-area-map');
  var msg = document.getElementById('gg-area-msg');
  if (!box || !field || !holder) return;
  var map = null, drawn = null;

  function wkt(latlngs) {
    var ring = latlngs.map(function (p) { return p.lng.toFixed(7) + ' ' + p.lat.toFixed(7); });
    ring.push(ring[0]);
    return 'POLYGON((' + ring.join(', ') + '))';
  }
  function fromWkt(text) {  /* the one ring of a POLYGON((x y, …)) this page wrote */
    var m = /POLYGON\s*\(\(([^()]+)\)/i.exec(text || '');
    if (!m) return null;
    return m[1].split(',').map(function (pair) {
      var xy = pair.trim().split(/\s+/).map(Number);
      return [xy[1], xy[0]];
    });
  }
  function show(layer) {
    if (drawn) map.removeLayer(drawn);
    drawn = layer;
    field.value = wkt(layer.getLatLngs()[0]);
    msg.textContent = msg.dataset.drawn;
  }
  function open() {
    if (map || !window.L) return;
    fetch(box.dataset.url, {credentials: 'same-origin'})
      .then(function (r) { return r.json(); })
      .then(function (d) {
        map = L.map(holder, {renderer: L.svg(), maxZoom: 21});
        var b = d.bounds || [73, 18, 135, 54];
        map.fitBounds([[b[1], b[0]], [b[3], b[2]]]);
        L.control.scale({imperial: false}).addTo(map);
        map.attributionControl.setPrefix(false);
        L.geoJSON(d.streets, {style: {color: '#8a8f98', weight: 2, className: 'gg-context-street'}, interactive: false}).addTo(map);
        map.pm.setLang && map.pm.setLang(document.documentElement.lang.indexOf('zh') === 0 ? 'zh' : 'en');
        map.pm.addControls({position: 'topleft', drawMarker: false, drawCircleMarker: false, drawPolyline: false,
                            drawRectangle: true, drawCircle: false, drawText: false, editMode: false, dragMode: false,
                            cutPolygon: false, removalMode: false, rotateMode: false});
        map.on('pm:create', function (e) { e.layer.options.className = 'gg-drawn-area'; show(e.layer); });
        var ring = fromWkt(field.value);
        if (ring) {
          drawn = L.polygon(ring, {color: '#b3261e', className: 'gg-drawn-area'}).addTo(map);
          map.fitBounds(drawn.getBounds(), {maxZoom: 18});
        }
      })
      .catch(function (err) { msg.textContent = String(err); });
  }
  box.addEventListener('toggle', function () { if (box.open) open(); });
  if (box.open) window.addEventListener('load', open);
  document.getElementById('gg-area-clear').addEventListener('click', function () {
    if (drawn && map) map.removeLayer(drawn);
    drawn = null;
    field.value = '';
  });
})();
