/* gisgrid case page map: the case's marker coloured by its deadline, the routed unit's area, the streets
 * around; no tile server.  The data is the JSON block #gg-case-map-data written by the server (PostGIS made
 * the GeoJSON); names and labels reach the map as text nodes only, never as markup. */
(function () {
  'use strict';
  var holder = document.getElementById('gg-case-map');
  var source = document.getElementById('gg-case-map-data');
  if (!holder || !source || !window.L) return;
  var d = JSON.parse(source.textContent);

  function text(value) {
    var span = document.createElement('span');
    span.textContent = value == null ? '' : String(value);
    return span;
  }

  var map = L.map(holder, {renderer: L.svg(), maxZoom: 21, zoomSnap: 0.25});
  holder.style.background = '#f4f1ea';
  map.fitBounds([[d.bounds[1], d.bounds[0]], [d.bounds[3], d.bounds[2]]], {padding: [12, 12], maxZoom: 19});
  L.control.scale({imperial: false}).addTo(map);
  map.attributionControl.setPrefix(false);
  if (d.attribution) map.attributionControl.addAttribution(text(d.attribution).innerHTML);

  if (d.area) {
    L.geoJSON(d.area, {
      style: {color: '#3a6ea5', weight: 1, fillColor: '#9ecae1', fillOpacity: 0.25, className: 'gg-case-area'},
      interactive: false
    }).addTo(map);
  }
  if (d.streets && d.streets.features && d.streets.features.length) {
    L.geoJSON(d.streets, {
      style: {color: '#8a8f98', weight: 3, opacity: 0.8, className: 'gg-context-street'},
      onEachFeature: function (feature, layer) {
        if (feature.properties && feature.properties.name) layer.bindTooltip(text(feature.properties.name), {sticky: true});
      }
    }).addTo(map);
  }
  L.circleMarker([d.lat, d.lon], {
    radius: 9, color: '#ffffff', weight: 2, fill: true, fillColor: d.colour, fillOpacity: 1, className: 'gg-case'
  }).bindTooltip(text(d.label)).addTo(map);
  window.ggCaseMap = map;
})();
