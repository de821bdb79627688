// The OGC API - Features HTML pages: draw the page's features (its GeoJSON twin) on a Leaflet map with
// no tile layer (offline), as the site's other maps.  Vendored Leaflet; nothing from the internet.
(function () {
  "use strict";
  var box = document.getElementById("gg-ogc-map");
  if (!box || !window.L) { return; }
  var map = L.map(box, { attributionControl: false });
  map.setView([30, 110], 3);
  fetch(box.getAttribute("data-src"), { credentials: "same-origin", headers: { Accept: "application/geo+json" } })
    .then(function (res) { return res.ok ? res.json() : null; })
    .then(function (data) {
      if (!data) { return; }
      var layer = L.geoJSON(data, {
        style: function () { return { color: "#c0392b", weight: 3, fillOpacity: 0.2 }; },
        pointToLayer: function (f, latlng) { return L.circleMarker(latlng, { radius: 5, color: "#c0392b" }); },
        onEachFeature: function (f, l) { l.bindTooltip(String(f.id)); }
      }).addTo(map);
      var bounds = layer.getBounds();
      if (bounds.isValid()) { map.fitBounds(bounds, { maxZoom: 17 }); }
      box.setAttribute("data-features", String((data.features || [data]).length));
    });
})();
