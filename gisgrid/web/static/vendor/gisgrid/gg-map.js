/* gisgrid map tools, started on every map by gisgrid.maps._base.MapTools: the basemap, the search box and the
 * legend's filter, fold and highlight.  The page says what to use in <meta name="gg-map-config"> (JSON, from
 * gisgrid.web.wayfinding.map_config); a map saved as a file has no such tag and keeps its plain background.
 * No inline handlers (the Content-Security-Policy forbids them), no network but the page's own origin. */
(function () {
  'use strict';

  var SMALL_SCREEN_PX = 600;
  var STREET_LABELS_FROM_ZOOM = 16;
  var ROAD_WEIGHTS = {motorway: 7, trunk: 7, primary: 6, secondary: 5, tertiary: 4.5, residential: 3.5,
    unclassified: 3.5, living_street: 3, service: 2.5, pedestrian: 2.5, footway: 1.5, steps: 1.5};
  var HIGHLIGHT = {color: '#d500f9', weight: 4, opacity: 1, fillColor: '#d500f9', fillOpacity: 0.12};

  function config() {
    var meta = document.querySelector('meta[name="gg-map-config"]');
    if (!meta) return null;
    try { return JSON.parse(meta.content); } catch (e) { return null; }
  }

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function debounce(fn, ms) {
    var timer = null;
    return function () {
      var args = arguments, self = this;
      clearTimeout(timer);
      timer = setTimeout(function () { fn.apply(self, args); }, ms);
    };
  }

  /* ------------------------------------------------------------------ basemap */

  function addTiles(map, tiles) {
    var layer = L.tileLayer(tiles.url, {
      maxZoom: tiles.maxZoom || 19,
      maxNativeZoom: tiles.maxNativeZoom || tiles.maxZoom || 19,
      minNativeZoom: tiles.minNativeZoom || 0,
      attribution: tiles.attribution ? tiles.attribution.replace(/</g, '&lt;') : '',
      className: 'gg-basemap-tiles'
    });
    layer.addTo(map);
    layer.bringToBack();
    map.ggBasemap = layer;
  }

  /* Lines read left to right: a street drawn east to west is reversed before its name is put along it. */
  function readable(map, latlngs) {
    var a = map.latLngToLayerPoint(latlngs[0]), b = map.latLngToLayerPoint(latlngs[latlngs.length - 1]);
    return a.x > b.x ? latlngs.slice().reverse() : latlngs;
  }

  function pixelLength(map, latlngs) {
    var total = 0;
    for (var i = 1; i < latlngs.length; i++) {
      total += map.latLngToLayerPoint(latlngs[i - 1]).distanceTo(map.latLngToLayerPoint(latlngs[i]));
    }
    return total;
  }

  function lineParts(geometry) {
    if (!geometry) return [];
    var parts = geometry.type === 'LineString' ? [geometry.coordinates]
      : geometry.type === 'MultiLineString' ? geometry.coordinates : [];
    return parts.map(function (part) { return part.map(function (c) { return L.latLng(c[1], c[0]); }); });
  }

  function polygonRings(geometry) {
    if (!geometry) return [];
    var polys = geometry.type === 'Polygon' ? [geometry.coordinates]
      : geometry.type === 'MultiPolygon' ? geometry.coordinates : [];
    return polys.map(function (poly) {
      return poly.map(function (ring) { return ring.map(function (c) { return L.latLng(c[1], c[0]); }); });
    });
  }

  function drawContext(map, group, data, renderer, labelRenderer) {
    group.clearLayers();
    var zoom = map.getZoom();
    // buildings first, under the streets: a light footprint, as on a printed town plan
    ((data.buildings || {}).features || []).forEach(function (f) {
      polygonRings(f.geometry).forEach(function (rings) {
        L.polygon(rings, {renderer: renderer, interactive: false, color: '#cfc8bb', weight: 0.8, opacity: 1,
          fillColor: '#e4ded3', fillOpacity: 1, className: 'gg-base-building'}).addTo(group);
      });
    });
    (data.boundaries.features || []).forEach(function (f) {
      var p = f.properties, town = p.level !== 'community';
      // each level's name at its own zooms: county far out, town at town scale, community closer in
      var shown = p.level === 'county' ? zoom <= 12 : p.level === 'town' ? zoom >= 11 && zoom <= 16 : zoom >= 14;
      lineParts(f.geometry).forEach(function (latlngs) {
        L.polyline(latlngs, {renderer: renderer, interactive: false, color: '#7e6b98', weight: town ? 2 : 1.2,
          opacity: 0.8, dashArray: town ? '8 4 2 4' : '4 4', className: 'gg-base-boundary'}).addTo(group);
      });
      // town names at town zooms, community names closer in
      if (p.label && shown) {
        L.marker([p.label[1], p.label[0]], {interactive: false, keyboard: false, pane: 'ggBaseLabels',
          icon: L.divIcon({className: 'gg-base-label gg-base-label-' + p.level, html: '', iconSize: null})})
          .addTo(group).getElement().textContent = p.name;
      }
    });
    var named = {};  // name -> label centres drawn (px): one name per stretch, not one per carriageway
    (data.streets.features || []).forEach(function (f) {
      var p = f.properties, weight = ROAD_WEIGHTS[p.road_class] || 3;
      if (zoom < 15) weight = Math.max(1, weight / 2);
      lineParts(f.geometry).forEach(function (latlngs) {
        if (latlngs.length < 2) return;
        L.polyline(latlngs, {renderer: renderer, interactive: false, color: '#b9b4a8', weight: weight + 2,
          opacity: 1, lineCap: 'round', className: 'gg-base-casing'}).addTo(group);
        L.polyline(latlngs, {renderer: renderer, interactive: false, color: '#ffffff',
          weight: weight, opacity: 1, lineCap: 'round', className: 'gg-base-street'}).addTo(group);
        if (zoom < STREET_LABELS_FROM_ZOOM || !p.name) return;
        // a name along the centerline where the street is long enough on screen to hold it, drawn above
        // the units (an invisible line in the label pane carries the text) so that it stays readable
        if (pixelLength(map, latlngs) < p.name.length * 13 + 24) return;
        var mid = map.latLngToLayerPoint(L.latLngBounds(latlngs).getCenter());
        var near = (named[p.name] || []).some(function (q) { return q.distanceTo(mid) < 250; });
        if (near) return;
        (named[p.name] = named[p.name] || []).push(mid);
        var carrier = L.polyline(readable(map, latlngs), {renderer: labelRenderer, interactive: false,
          opacity: 0, weight: 1, className: 'gg-street-label-line'}).addTo(group);
        if (carrier.setText) {
          carrier.setText(p.name, {center: true, offset: 4,
            attributes: {'class': 'gg-street-label', 'font-size': '12px', fill: '#3b3a36'}});
        }
      });
    });
  }

  function addOwnLayers(map, url) {
    if (!map.getPane('ggBase')) {
      map.createPane('ggBase').style.zIndex = 250;  // under the units (overlayPane 400)
      map.createPane('ggBaseLabels').style.zIndex = 450;
      map.getPane('ggBaseLabels').style.pointerEvents = 'none';
    }
    var renderer = L.svg({pane: 'ggBase'}), labelRenderer = L.svg({pane: 'ggBaseLabels'});
    var group = L.layerGroup().addTo(map);
    map.ggBasemap = group;
    var controller = null, lastKey = null;
    var load = debounce(function () {
      var b = map.getBounds(), z = Math.floor(map.getZoom());
      var bbox = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map(function (v) { return v.toFixed(5); });
      var key = bbox.join(',') + '/' + z;
      if (key === lastKey) return;
      lastKey = key;
      if (controller) controller.abort();
      controller = window.AbortController ? new AbortController() : null;
      fetch(url + '?bbox=' + bbox.join(',') + '&zoom=' + z,
        {credentials: 'same-origin', signal: controller ? controller.signal : undefined})
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) {
          if (data) { drawContext(map, group, data, renderer, labelRenderer); map.fire('gg:basemap'); }
        })
        .catch(function () { /* a newer view replaced this request */ });
    }, 200);
    map.on('moveend zoomend', load);
    load();
  }

  /* ------------------------------------------------------------------ search */

  function showFound(map, found, cfg) {
    if (map.ggFound) map.removeLayer(map.ggFound);
    var layer = L.geoJSON(found.geometry, {
      style: function () { return HIGHLIGHT; },
      pointToLayer: function (f, latlng) {
        return L.circleMarker(latlng, {radius: 10, color: '#ffffff', weight: 3, fillColor: '#d500f9', fillOpacity: 1});
      },
      className: 'gg-found'
    });
    layer.eachLayer(function (l) { if (l.options) l.options.className = 'gg-found'; });
    layer.addTo(map);
    map.ggFound = layer;
    var b = found.bbox;
    if (b) {
      if (b[0] === b[2] && b[1] === b[3]) map.setView([b[1], b[0]], Math.max(map.getZoom(), 18));
      else map.fitBounds([[b[1], b[0]], [b[3], b[2]]], {maxZoom: 18, padding: [30, 30]});
    }
    var box = el('div', 'gg-found-popup');
    box.appendChild(el('strong', null, found.label));
    if (found.detail) box.appendChild(el('div', null, found.detail));
    if (found.kind === 'case' && cfg.caseUrl) {
      var a = el('a', null, cfg.words.open);
      a.href = cfg.caseUrl.replace('{id}', found.id);
      box.appendChild(a);
    }
    var at = b ? L.latLng((b[1] + b[3]) / 2, (b[0] + b[2]) / 2) : map.getCenter();
    L.popup({autoPan: false}).setLatLng(at).setContent(box).openOn(map);
    map.fire('gg:found', {found: found});
  }

  function addSearch(map, cfg) {
    var SearchControl = L.Control.extend({
      options: {position: 'topleft'},
      onAdd: function () {
        var box = el('div', 'gg-search leaflet-bar');
        var form = el('form');
        form.setAttribute('role', 'search');
        var input = el('input');
        input.type = 'search';
        input.className = 'gg-search-input';
        input.placeholder = cfg.words.search;
        input.setAttribute('aria-label', cfg.words.search);
        input.autocomplete = 'off';
        var list = el('ul', 'gg-search-results');
        form.appendChild(input);
        box.appendChild(form);
        box.appendChild(list);
        L.DomEvent.disableClickPropagation(box);
        L.DomEvent.disableScrollPropagation(box);
        var results = [], seq = 0;

        function render(items, message) {
          list.textContent = '';
          if (message) { list.appendChild(el('li', 'gg-search-note', message)); return; }
          items.forEach(function (r, i) {
            var li = el('li', 'gg-search-result');
            li.setAttribute('data-kind', r.kind);
            li.appendChild(el('span', 'gg-search-kind', cfg.words[r.kind] || r.kind));
            li.appendChild(el('span', 'gg-search-label', r.label));
            var detail = r.detail || '';
            if (r.count) detail += (detail ? ' · ' : '') + r.count + ' ' + cfg.words.units;
            if (detail) li.appendChild(el('span', 'gg-search-detail', detail));
            li.addEventListener('click', function () { pick(i); });
            list.appendChild(li);
          });
        }

        function pick(i) {
          var r = results[i];
          if (!r) return;
          list.textContent = '';
          showFound(map, r, cfg);
        }

        function run(then) {
          var q = input.value.trim(), mine = ++seq;
          if (!q) { results = []; render([]); return; }
          fetch(cfg.search + '?q=' + encodeURIComponent(q), {credentials: 'same-origin'})
            .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
            .then(function (body) {
              if (mine !== seq) return;
              results = body.results || [];
              render(results, results.length ? null : cfg.words.nothing);
              if (then) then();
            })
            .catch(function () { if (mine === seq) render([], cfg.words.failed); });
        }

        input.addEventListener('input', debounce(function () { run(); }, 300));
        form.addEventListener('submit', function (e) {
          e.preventDefault();
          run(function () { pick(0); });
        });
        return box;
      }
    });
    map.ggSearch = new SearchControl().addTo(map);
  }

  /* ------------------------------------------------------------------ legend */

  function unitLayers(map, key) {
    var hits = [];
    map.eachLayer(function (layer) {
      if (layer instanceof L.GeoJSON) {
        layer.eachLayer(function (f) {
          if (f.feature && f.feature.properties && f.feature.properties.owner_key === key) hits.push([layer, f]);
        });
      }
    });
    return hits;
  }

  function clearHighlight(map) {
    (map.ggHighlighted || []).forEach(function (pair) { pair[0].resetStyle(pair[1]); });
    map.ggHighlighted = [];
  }

  function highlightOwner(map, key) {
    clearHighlight(map);
    var hits = unitLayers(map, key);
    if (!hits.length) return 0;
    var bounds = L.latLngBounds([]);
    hits.forEach(function (pair) {
      pair[1].setStyle({weight: 4, color: '#000000', fillOpacity: 0.9, opacity: 1});
      if (pair[1].bringToFront) pair[1].bringToFront();
      if (pair[1].getBounds) bounds.extend(pair[1].getBounds());
    });
    map.ggHighlighted = hits;
    if (bounds.isValid()) map.fitBounds(bounds, {maxZoom: 18, padding: [20, 20]});
    return hits.length;
  }

  function enhanceLegend(map, legend, cfg) {
    if (legend.getAttribute('data-gg-ready')) return;
    legend.setAttribute('data-gg-ready', '1');
    var words = (cfg && cfg.words) || {legendFilter: 'Find a name', legendToggle: 'Legend'};
    var rows = legend.querySelectorAll('.gg-legend-row');
    var body = el('div', 'gg-legend-body');
    while (legend.firstChild) body.appendChild(legend.firstChild);
    var heading = body.querySelector('h4');  // the legend's own title becomes its fold button
    var head = el('button', 'gg-legend-toggle', heading ? heading.textContent : words.legendToggle);
    if (heading) heading.remove();
    head.type = 'button';
    head.setAttribute('aria-expanded', 'true');
    legend.appendChild(head);
    if (rows.length > 6) {
      var filter = el('input', 'gg-legend-filter');
      filter.type = 'search';
      filter.placeholder = words.legendFilter;
      filter.setAttribute('aria-label', words.legendFilter);
      filter.addEventListener('input', function () {
        var q = filter.value.trim().toLowerCase();
        rows.forEach(function (row) {
          row.hidden = q !== '' && row.textContent.toLowerCase().indexOf(q) < 0;
        });
      });
      body.insertBefore(filter, body.firstChild);
    }
    legend.appendChild(body);
    function fold(folded) {
      legend.classList.toggle('gg-folded', folded);
      head.setAttribute('aria-expanded', folded ? 'false' : 'true');
    }
    head.addEventListener('click', function () { fold(!legend.classList.contains('gg-folded')); });
    // on a phone the legend starts folded: the map comes first
    fold(map.getContainer().clientWidth < SMALL_SCREEN_PX || map.getContainer().clientHeight < 450);
    rows.forEach(function (row) {
      var key = row.getAttribute('data-owner');
      if (!key) return;
      row.classList.add('gg-clickable');
      row.tabIndex = 0;
      function toggle() {
        var active = row.classList.contains('gg-active');
        legend.querySelectorAll('.gg-active').forEach(function (r) { r.classList.remove('gg-active'); });
        if (active) { clearHighlight(map); return; }
        if (highlightOwner(map, key)) row.classList.add('gg-active');
      }
      row.addEventListener('click', toggle);
      row.addEventListener('keydown', function (e) { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); toggle(); } });
    });
  }

  /* ------------------------------------------------------------------ start */

  function attach(map) {
    var cfg = config();
    if (cfg && cfg.tiles) addTiles(map, cfg.tiles);
    setTimeout(function () {  // after the page's script has added its layers and controls
      if (cfg && !cfg.tiles && cfg.context) addOwnLayers(map, cfg.context);
      if (cfg && cfg.search) addSearch(map, cfg);
      map.getContainer().querySelectorAll('.gg-legend').forEach(function (legend) { enhanceLegend(map, legend, cfg); });
      var small = map.getContainer().clientWidth < SMALL_SCREEN_PX;
      if (small) {
        map.getContainer().querySelectorAll('.leaflet-control-layers-expanded').forEach(function (c) {
          c.classList.remove('leaflet-control-layers-expanded');  // the layer switcher folds to its icon
          var toggle = c.querySelector('.leaflet-control-layers-toggle');
          if (toggle) toggle.addEventListener('click', function (e) {
            e.preventDefault();
            c.classList.toggle('leaflet-control-layers-expanded');
          });
        });
      }
      map.ggReady = true;
      map.fire('gg:ready');
    }, 0);
  }

  window.ggMap = {attach: attach, highlightOwner: highlightOwner, clearHighlight: clearHighlight, showFound: showFound};
})();
