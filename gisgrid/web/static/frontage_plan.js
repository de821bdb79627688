/* gisgrid /plan, frontage layer: reshape one unit's frontage (门前三包) and save it; the server clips it to
 * the segment's area and off the neighbours' frontages, and refuses a stale revision.
 * Text from the server reaches the page through textContent only. */
(function () {
  'use strict';
  var cfg = window.ggFrontagePlan;
  var map = window[cfg.map];
  var T = cfg.text;
  function $(id) { return document.getElementById(id); }
  function fmt(s, v) { return s.replace(/\{(\w+)\}/g, function (_, k) { return v[k] == null ? '' : String(v[k]); }); }
  function message(kind, text) { var box = $('gg-plan-msg'); box.className = kind ? 'gg-' + kind : ''; box.textContent = text || ''; }
  var STYLE = {color: '#2e7d32', weight: 1, fillColor: '#66bb6a', fillOpacity: 0.45, className: 'gg-plan-frontage'};
  var SELECTED = {color: '#08306b', weight: 3, fillColor: '#4292c6', fillOpacity: 0.5};
  L.geoJSON(cfg.boundary, {interactive: false, pmIgnore: true, style: {color: '#17324d', weight: 2, fill: false, dashArray: '6 4'}}).addTo(map);
  var group = L.featureGroup().addTo(map);
  var selected = null;

  function select(layer) {
    if (selected && selected !== layer) { selected.pm.disable(); selected.setStyle(STYLE); }
    selected = layer;
    layer.setStyle(SELECTED);
    layer.pm.enable({allowSelfIntersection: false, snappable: true});
    var p = layer.feature.properties;
    $('gg-plan-selected').textContent = fmt(T.selected, {name: p.name, rev: p.revision});
    message('', '');
  }
  function load() {
    return fetch(cfg.urls.units + '?town=' + encodeURIComponent(cfg.town)).then(function (r) { return r.json(); })
      .then(function (body) {
        group.clearLayers();
        selected = null;
        L.geoJSON(body.units, {style: function () { return STYLE; }, onEachFeature: function (f, l) {
          l.feature = f;
          var span = document.createElement('span'); span.textContent = f.properties.name; l.bindTooltip(span, {sticky: true});
          l.on('click', function () { select(l); });
          group.addLayer(l);
        }});
        document.getElementById('gg-plan-count').textContent = fmt(T.units, {n: body.units.features.length});
        if (body.units.features.length) map.fitBounds(group.getBounds(), {maxZoom: 17});
      });
  }
  $('gg-frontage-save').addEventListener('click', function () {
    if (!selected) { message('bad', T.selectFirst); return; }
    var p = selected.feature.properties;
    var token = document.querySelector('meta[name=csrf-token]').content;
    fetch(cfg.urls.save, {method: 'POST', headers: {'Content-Type': 'application/json', 'X-CSRFToken': token},
      body: JSON.stringify({id: p.id, revision: p.revision, geometry: selected.toGeoJSON().geometry})})
      .then(function (r) { return r.json().then(function (b) { return {ok: r.ok, body: b}; }); })
      .then(function (res) {
        if (!res.ok) { message('bad', T.refused + ' ' + (res.body.detail || '')); return; }
        return load().then(function () { message('ok', fmt(T.saved, {rev: res.body.revision})); });
      })
      .catch(function (err) { message('bad', String(err)); });
  });
  $('gg-frontage-cancel').addEventListener('click', function () { load(); message('', ''); });
  load();
})();
