/* gisgrid /plan: the planners' editor for grid cells and segment areas.
 *
 * Leaflet-Geoman (vendored) draws and reshapes; every check and save goes to
 * /api/plan/*, which validates and versions the edit.  All text from the
 * server reaches the page through textContent, never innerHTML.
 */
(function () {
  'use strict';
  var cfg = window.ggPlanConfig;
  var map = window[cfg.map];
  var T = cfg.text;
  var isCell = cfg.layer === 'cell';

  function fmt(s, values) {
    return s.replace(/\{(\w+)\}/g, function (_, k) { return values[k] == null ? '' : String(values[k]); });
  }
  var english = (document.documentElement.lang || '').indexOf('en') === 0;
  /* The server's message in English; in other languages the translated text of its code, with the place. */
  function problemText(p) {
    var local = !english && T.problems[p.code];
    if (!local) return p.message;
    return local + (p.location ? ' (' + p.location[0].toFixed(6) + ', ' + p.location[1].toFixed(6) + ')' : '');
  }
  function num(x) { return Number(x).toLocaleString(undefined, {maximumFractionDigits: 1}); }
  function $(id) { return document.getElementById(id); }

  var STYLE = {color: '#3a6ea5', weight: 1, fillColor: '#9ecae1', fillOpacity: 0.25, className: 'gg-plan-unit'};
  var SELECTED = {color: '#08306b', weight: 3, fillColor: '#4292c6', fillOpacity: 0.45};

  L.geoJSON(cfg.boundary, {interactive: false, pmIgnore: true,
    style: {color: '#17324d', weight: 2, fill: false, dashArray: '6 4'}}).addTo(map);
  var unitsLayer = L.featureGroup().addTo(map);
  var problemLayer = L.featureGroup().addTo(map);
  var historyLayer = L.featureGroup().addTo(map);
  var draftLayer = null;   // a drawn cell or split line
  var byId = {};
  var selected = [];       // layers
  var tool = null;
  var removed = [];

  map.pm.setGlobalOptions({snappable: true, snapDistance: 15, allowSelfIntersection: true});
  map.pm.setLang && map.pm.setLang(document.documentElement.lang && document.documentElement.lang.indexOf('zh') === 0 ? 'zh' : 'en');

  // --- who ---------------------------------------------------------------------
  var who = $('gg-plan-who');
  // the server records the signed-in user as the author; the field only shows who that is
  if (!who.readOnly) try { who.value = localStorage.getItem('gisgrid.planner') || ''; } catch (e) { /* private mode */ }
  who.addEventListener('change', function () {
    try { localStorage.setItem('gisgrid.planner', who.value.trim()); } catch (e) { /* ignore */ }
  });

  // --- messages ------------------------------------------------------------------
  function message(kind, text) {
    var box = $('gg-plan-msg');
    box.className = kind ? 'gg-' + kind : '';
    box.textContent = text || '';
  }
  function hint(text) { $('gg-plan-hint').textContent = text || ''; }

  function clearProblems() {
    problemLayer.clearLayers();
    $('gg-plan-problems').textContent = '';
  }
  function listItem(text) {
    var li = document.createElement('li');
    li.textContent = text;
    $('gg-plan-problems').appendChild(li);
    return li;
  }
  function tip(layer, text) {
    var span = document.createElement('span');
    span.textContent = text;
    layer.bindTooltip(span, {sticky: true});
  }

  /* Draw what the server said about an edit: problems (red markers at their
   * location), overlaps (orange), the part outside (purple), gaps (red) and the
   * geometry that would be stored (green dashes). */
  function showCheck(body) {
    clearProblems();
    (body.problems || []).forEach(function (p) {
      var li = listItem(problemText(p));
      li.className = 'gg-problem gg-problem-' + p.code;
      if (p.location) {
        var m = L.circleMarker([p.location[1], p.location[0]], {radius: 9, color: '#d7301f', weight: 3,
          fillColor: '#d7301f', fillOpacity: 0.5, className: 'gg-plan-problem gg-problem-' + p.code, pmIgnore: true});
        tip(m, problemText(p));
        problemLayer.addLayer(m);
      }
    });
    if (body.overlaps && body.overlaps.features.length) {
      L.geoJSON(body.overlaps, {pmIgnore: true, style: {color: '#e6550d', weight: 1, fillColor: '#fd8d3c', fillOpacity: 0.7,
        className: 'gg-plan-overlap'}, onEachFeature: function (f, l) {
        var text = fmt(T.overlapRow, {code: f.properties.code, owners: f.properties.owners || '—', a: num(f.properties.area_m2)});
        tip(l, text); listItem(text);
      }}).addTo(problemLayer);
    }
    if (body.outside) {
      var o = L.geoJSON(body.outside.geometry, {pmIgnore: true, style: {color: '#7b3294', weight: 1, fillColor: '#7b3294',
        fillOpacity: 0.5, className: 'gg-plan-outside'}}).addTo(problemLayer);
      var text = fmt(T.outside, {a: num(body.outside.area_m2)});
      o.eachLayer(function (l) { tip(l, text); });
      listItem(text);
    }
    if (body.geometry && body.ok) {
      L.geoJSON(body.geometry, {pmIgnore: true, interactive: false, style: {color: '#31a354', weight: 2, dashArray: '5 4',
        fillOpacity: 0.08, className: 'gg-plan-result'}}).addTo(problemLayer);
    }
    if (body.gaps && body.gaps.features.length) {
      var total = 0;
      L.geoJSON(body.gaps, {pmIgnore: true, style: {color: '#d7301f', weight: 1, fillColor: '#d7301f', fillOpacity: 0.55,
        className: 'gg-plan-gap'}, onEachFeature: function (f, l) {
        total += f.properties.area_m2; tip(l, num(f.properties.area_m2) + ' m²');
      }}).addTo(problemLayer);
      listItem(fmt(T.gaps, {a: num(total)})).className = 'gg-plan-gap-note';
    }
  }

  // --- units ---------------------------------------------------------------------
  function label(p) { return p.code + (p.owners ? ' · ' + p.owners : ''); }

  function loadUnits() {
    var url = cfg.urls.units + '?town=' + encodeURIComponent(cfg.town) + '&layer=' + encodeURIComponent(cfg.layer);
    return fetch(url).then(function (r) { return r.json(); }).then(function (body) {
      unitsLayer.clearLayers();
      byId = {};
      selected = [];
      L.geoJSON(body.units, {style: function () { return STYLE; }, onEachFeature: function (f, l) {
        l.feature = f;
        byId[f.properties.unit_id] = l;
        tip(l, label(f.properties));
        l.on('click', function () { onUnitClick(l); });  // not stopped: Geoman draws on map clicks
        unitsLayer.addLayer(l);
      }});
      $('gg-plan-count').textContent = fmt(T.units, {n: body.units.features.length});
      removed = body.removed || [];
      renderRemoved();
      renderSelected();
    });
  }

  function renderSelected() {
    unitsLayer.eachLayer(function (l) { l.setStyle(selected.indexOf(l) >= 0 ? SELECTED : STYLE); });
    $('gg-plan-selected').textContent = selected.map(function (l) {
      return label(l.feature.properties) + ' (r' + l.feature.properties.revision + ')';
    }).join('\n');
  }

  function onUnitClick(l) {
    if (tool === 'draw' || tool === 'split' && selected.length) return;
    if (tool === 'merge') {
      var i = selected.indexOf(l);
      if (i >= 0) selected.splice(i, 1); else selected.push(l);
    } else {
      if (tool === 'reshape' && selected[0] && selected[0] !== l) stopReshape(true);
      selected = [l];
      loadHistory(l.feature.properties.unit_id);
      if (tool === 'reshape') startReshape();
    }
    renderSelected();
  }

  // --- tools ---------------------------------------------------------------------
  function setTool(name) {
    if (tool === 'reshape') stopReshape(true);
    map.pm.disableDraw();
    if (draftLayer) { map.removeLayer(draftLayer); draftLayer = null; }
    clearProblems();
    tool = name === 'cancel' ? null : name;
    // A new tool starts from a clean selection: a merge must never carry a cell picked for an earlier
    // tool (perhaps off screen).  Reshape, split and delete keep one unit picked just before them.
    if (!tool || tool === 'merge' || tool === 'draw' || selected.length !== 1) selected = [];
    if (!tool) { historyLayer.clearLayers(); }
    document.querySelectorAll('.gg-tools button[data-tool]').forEach(function (b) {
      b.classList.toggle('gg-active', b.dataset.tool === tool);
    });
    message('', '');
    if (tool === 'draw') {
      selected = []; renderSelected();
      hint(T.drawHint);
      map.pm.enableDraw('Polygon', {snappable: true, snapDistance: 15, allowSelfIntersection: true,
        templineStyle: {color: '#2171b5'}, hintlineStyle: {color: '#2171b5', dashArray: '5 5'}});
    } else if (tool === 'reshape') {
      hint(T.reshapeHint);
      if (selected.length) { selected = [selected[0]]; startReshape(); } else message('info', T.selectFirst);
    } else if (tool === 'split') {
      hint(T.splitHint);
      if (!selected.length) { message('info', T.selectFirst); tool = 'split'; }
      else { selected = [selected[0]]; map.pm.enableDraw('Line', {snappable: true, snapDistance: 15}); }
    } else if (tool === 'merge') {
      hint(T.mergeHint);
    } else if (tool === 'delete') {
      hint(T.deleteHint);
      if (!selected.length) message('info', T.selectFirst);
    } else {
      hint('');
    }
    renderSelected();
  }

  var reshapeOriginal = null;
  function startReshape() {
    var l = selected[0];
    reshapeOriginal = l.toGeoJSON().geometry;
    l.pm.enable({snappable: true, snapDistance: 15, allowSelfIntersection: true});
  }
  function stopReshape(revert) {
    var l = selected[0];
    if (!l || !l.pm) return;
    l.pm.disable();
    if (revert && reshapeOriginal) {
      var fresh = L.GeoJSON.geometryToLayer({type: 'Feature', geometry: reshapeOriginal});
      l.setLatLngs(fresh.getLatLngs());
    }
    reshapeOriginal = null;
  }

  map.on('pm:create', function (e) {
    if (tool === 'draw') {
      draftLayer = e.layer;
      draftLayer.setStyle({color: '#2171b5', dashArray: '6 4', weight: 2, className: 'gg-plan-draft'});
      map.pm.disableDraw();
      runCheck();
    } else if (tool === 'split') {
      if (!selected.length) { map.removeLayer(e.layer); message('info', T.selectFirst); return; }
      draftLayer = e.layer;
      draftLayer.setStyle({color: '#2171b5', dashArray: '6 4', weight: 3});
      map.pm.disableDraw();
      runCheck();
    } else {
      map.removeLayer(e.layer);
    }
  });
  map.on('click', function () {
    if (tool === 'split' && !selected.length) message('info', T.selectFirst);
  });

  document.querySelectorAll('.gg-tools button[data-tool]').forEach(function (b) {
    b.addEventListener('click', function () { setTool(b.dataset.tool); });
  });

  // --- edits ---------------------------------------------------------------------
  function overlapMode() {
    var checked = document.querySelector('input[name="gg-overlap"]:checked');
    return checked ? checked.value : 'refuse';
  }
  function revisions(layers) {
    var out = {};
    layers.forEach(function (l) { out[l.feature.properties.unit_id] = l.feature.properties.revision; });
    return out;
  }
  function ids(layers) { return layers.map(function (l) { return l.feature.properties.unit_id; }); }

  /* The edit the panel describes now, or null (with a message) when there is none. */
  function currentEdit() {
    var base = {layer: cfg.layer, town: cfg.town, overlap: overlapMode(), saved_by: who.value.trim(),
                reason: $('gg-plan-reason').value.trim()};
    if (tool === 'draw') {
      if (!draftLayer) { message('info', T.drawHint); return null; }
      return Object.assign(base, {action: 'create', unit_ids: [], revisions: {}, geometry: draftLayer.toGeoJSON().geometry});
    }
    if (tool === 'reshape') {
      if (!selected.length) { message('info', T.selectFirst); return null; }
      return Object.assign(base, {action: 'reshape', unit_ids: ids(selected), revisions: revisions(selected),
        geometry: selected[0].toGeoJSON().geometry});
    }
    if (tool === 'split') {
      if (!selected.length || !draftLayer) { message('info', selected.length ? T.splitHint : T.selectFirst); return null; }
      return Object.assign(base, {action: 'split', unit_ids: ids(selected), revisions: revisions(selected),
        line: draftLayer.toGeoJSON().geometry});
    }
    if (tool === 'merge') {
      if (selected.length < 2) { message('info', T.selectTwo); return null; }
      return Object.assign(base, {action: 'merge', unit_ids: ids(selected), revisions: revisions(selected)});
    }
    if (tool === 'delete') {
      if (!selected.length) { message('info', T.selectFirst); return null; }
      return Object.assign(base, {action: 'delete', unit_ids: ids(selected), revisions: revisions(selected)});
    }
    message('info', T.nothing);
    return null;
  }

  function post(url, body) {
    var csrf = document.querySelector('meta[name="csrf-token"]');
    return fetch(url, {method: 'POST', body: JSON.stringify(body),
                       headers: {'Content-Type': 'application/json', 'X-CSRFToken': csrf ? csrf.content : ''}})
      .then(function (r) { return r.json().then(function (b) { return {status: r.status, body: b}; }); });
  }

  function runCheck(edit) {
    edit = edit || currentEdit();
    if (!edit) return;
    post(cfg.urls.check, edit).then(function (res) {
      if (res.status !== 200) { message('bad', res.body.detail || res.body.error); return; }
      showCheck(res.body);
      if (res.body.ok) {
        var parts = res.body.parts_m2 || [];
        message('ok', T.checkOk + '\n' + (parts.length > 1
          ? fmt(T.splitArea, {parts: parts.map(num).join(' + '), a: num(res.body.area_m2), n: parts.length})
          : fmt(T.area, {a: num(res.body.area_m2)})));
      }
      else message('bad', T.refused + ' ' + res.body.problems.map(problemText).join('\n'));
    }).catch(function (err) { message('bad', String(err)); });
  }

  function save(edit) {
    edit = edit || currentEdit();
    if (!edit) return;
    if (!edit.saved_by) { message('bad', T.whoFirst); who.focus(); return; }
    post(cfg.urls.save, edit).then(function (res) {
      if (res.status === 200) {
        var units = res.body.units || [];
        if (tool === 'reshape') stopReshape(false);
        if (draftLayer) { map.removeLayer(draftLayer); draftLayer = null; }
        var keepGaps = res.body;
        $('gg-plan-reason').value = '';
        var focus = units.length && units[0].kind !== 'remove' ? units[0].unit_id : null;
        return loadUnits().then(function () {
          showCheck({problems: [], overlaps: null, gaps: keepGaps.gaps, outside: null, geometry: null});
          message('ok', T.saved + ' ' + units.map(function (u) {
            return u.code + ' r' + u.revision + ' (' + (T.actions[u.action] || u.action) + ')'; }).join(', '));
          document.querySelectorAll('.gg-tools button').forEach(function (b) { b.classList.remove('gg-active'); });
          tool = null; hint('');
          if (focus != null && byId[focus]) { selected = [byId[focus]]; renderSelected(); loadHistory(focus); }
          else if (edit.action === 'restore' || edit.action === 'delete') loadHistory(edit.unit_ids[0]);
        });
      }
      if (res.status === 422 && res.body.problems) {
        showCheck(res.body);
        message('bad', T.refused + ' ' + res.body.problems.map(problemText).join('\n'));
        return;
      }
      if (res.status === 409) {
        clearProblems();
        (res.body.current || []).forEach(function (c) {
          if (c.geometry) L.geoJSON(c.geometry, {pmIgnore: true, interactive: false, style: {color: '#555', weight: 2,
            dashArray: '3 5', fill: false, className: 'gg-plan-current'}}).addTo(problemLayer);
        });
        message('bad', T.conflict + ' ' + res.body.detail + '\n' + T.keptDraft);
        return;
      }
      message('bad', res.body.detail || res.body.error || ('HTTP ' + res.status));
    }).catch(function (err) { message('bad', String(err)); });
  }

  $('gg-plan-check').addEventListener('click', function () { runCheck(); });
  $('gg-plan-save').addEventListener('click', function () { save(); });

  // --- history -------------------------------------------------------------------
  var historyRequest = 0;
  function loadHistory(unitId) {
    var list = $('gg-plan-history');
    var url = cfg.urls.history + '?layer=' + encodeURIComponent(cfg.layer) + '&id=' + encodeURIComponent(unitId);
    var mine = ++historyRequest;
    return fetch(url).then(function (r) { return r.json().then(function (b) { return {status: r.status, body: b}; }); })
      .then(function (res) {
        if (mine !== historyRequest) return;  // a later request (another unit) wins
        list.textContent = '';
        list.dataset.unit = unitId;
        historyLayer.clearLayers();
        var versions = res.status === 200 ? res.body.versions : [];
        if (!versions.length) {
          var li = document.createElement('li'); li.className = 'gg-muted'; li.textContent = T.none; list.appendChild(li);
          return;
        }
        var current = versions[0].revision;
        versions.forEach(function (v) {
          var li = document.createElement('li');
          li.className = 'gg-version';
          li.dataset.versionId = v.version_id;
          var text = document.createElement('span');
          text.textContent = 'r' + v.revision + ' · ' + (T.actions[v.action] || v.action) + ' · ' + (v.saved_by || '—') + ' · ' +
            v.saved_at.slice(0, 16).replace('T', ' ') + (v.reason ? ' · ' + v.reason : '') +
            (v.area_m2 != null ? ' · ' + num(v.area_m2) + ' m²' : '');
          li.appendChild(text);
          if (v.geometry) {
            var view = document.createElement('button');
            view.type = 'button'; view.className = 'gg-view'; view.textContent = T.view;
            view.addEventListener('click', function () {
              historyLayer.clearLayers();
              var g = L.geoJSON(v.geometry, {pmIgnore: true, interactive: false, style: {color: '#6a3d9a', weight: 3,
                dashArray: '8 5', fillColor: '#cab2d6', fillOpacity: 0.35, className: 'gg-plan-version'}}).addTo(historyLayer);
              map.fitBounds(g.getBounds(), {maxZoom: 19, padding: [40, 40]});
            });
            li.appendChild(view);
            if (v.revision !== current || !byId[unitId]) {
              var restore = document.createElement('button');
              restore.type = 'button'; restore.className = 'gg-restore'; restore.textContent = T.restore;
              restore.addEventListener('click', function () {
                var revs = {}; revs[unitId] = current;
                // a restore replaces the saved shape: confirm, and say why (kept in the version history)
                var reason = window.prompt(fmt(T.restoreAsk, {rev: 'r' + v.revision}), $('gg-plan-reason').value.trim());
                if (reason === null) { message('info', T.restoreCancelled); return; }
                reason = reason.trim();
                if (!reason) { message('bad', T.restoreReason); return; }
                tool = null;
                save({layer: cfg.layer, town: cfg.town, action: 'restore', unit_ids: [unitId], revisions: revs,
                      version_id: v.version_id, overlap: overlapMode(), saved_by: who.value.trim(),
                      reason: reason});
              });
              li.appendChild(restore);
            }
          }
          list.appendChild(li);
        });
      });
  }

  function renderRemoved() {
    var list = $('gg-plan-removed');
    if (!list) return;
    list.textContent = '';
    if (!removed.length) {
      var none = document.createElement('li'); none.className = 'gg-muted'; none.textContent = T.none; list.appendChild(none);
      return;
    }
    removed.forEach(function (r) {
      var li = document.createElement('li');
      var span = document.createElement('span');
      span.textContent = r.code + ' · ' + (T.actions[r.action] || r.action) + ' · ' + (r.saved_by || '—') + ' · ' + r.saved_at;
      li.appendChild(span);
      var b = document.createElement('button');
      b.type = 'button'; b.textContent = T.history;
      b.addEventListener('click', function () { selected = []; renderSelected(); loadHistory(r.unit_id); });
      li.appendChild(b);
      list.appendChild(li);
    });
  }

  window.ggPlan = {map: map, units: function () { return byId; }, reload: loadUnits};
  loadUnits();
})();
