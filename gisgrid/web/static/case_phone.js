/* gisgrid phone page: GPS, camera, and an outbox that survives no signal.
 *
 * Every report gets a client id (a UUID) when it is made and waits in IndexedDB
 * ("gisgrid-outbox") until the server has it; sending the same report twice makes
 * one case (the server keys on the client id).  A service worker keeps the page
 * itself available offline.  Server text reaches the page through textContent only.
 */
(function () {
  'use strict';
  var cfg = window.ggPhone;
  var T = cfg.text;
  var DB = 'gisgrid-outbox', STORE = 'reports';
  function $(id) { return document.getElementById(id); }
  function fmt(s, v) { return s.replace(/\{(\w+)\}/g, function (_, k) { return v[k]; }); }
  function uuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 15) | 64; b[8] = (b[8] & 63) | 128;
    var h = Array.prototype.map.call(b, function (x) { return (x + 256).toString(16).slice(1); }).join('');
    return h.slice(0, 8) + '-' + h.slice(8, 12) + '-' + h.slice(12, 16) + '-' + h.slice(16, 20) + '-' + h.slice(20);
  }
  function open() {
    return new Promise(function (resolve, reject) {
      var req = indexedDB.open(DB, 1);
      req.onupgradeneeded = function () { req.result.createObjectStore(STORE, {keyPath: 'client_id'}); };
      req.onsuccess = function () { resolve(req.result); };
      req.onerror = function () { reject(req.error); };
    });
  }
  function tx(mode, fn) {
    return open().then(function (db) {
      return new Promise(function (resolve, reject) {
        var t = db.transaction(STORE, mode);
        var out = fn(t.objectStore(STORE));
        t.oncomplete = function () { resolve(out && out.result !== undefined ? out.result : out); };
        t.onerror = function () { reject(t.error); };
      });
    });
  }
  function all() { return tx('readonly', function (s) { return s.getAll(); }); }
  function put(r) { return tx('readwrite', function (s) { s.put(r); }); }
  function drop(id) { return tx('readwrite', function (s) { s.delete(id); }); }

  function showNet() {
    var on = navigator.onLine;
    var el = $('gg-net');
    el.textContent = on ? T.online : T.offline;
    el.className = 'gg-status ' + (on ? 'gg-ok' : 'gg-bad');
    el.dataset.online = on ? '1' : '0';
  }
  function render() {
    return all().then(function (rows) {
      var ul = $('gg-queue');
      ul.textContent = '';
      rows.forEach(function (r) {
        var li = document.createElement('li');
        li.dataset.clientId = r.client_id;
        var what = r.kind === 'checkin' ? T.checkin : (r.item_label || r.category);
        li.textContent = r.created + ' · ' + what + ' · ' + (r.error ? T.refused + ' ' + r.error : T.waiting);
        ul.appendChild(li);
      });
      ul.dataset.count = String(rows.length);
    });
  }
  var sending = false;
  function flush() {
    if (sending || !navigator.onLine) return Promise.resolve();
    sending = true;
    return all().then(function (rows) {
      return rows.filter(function (r) { return !r.error; }).reduce(function (p, r) {
        return p.then(function () { return send(r); });
      }, Promise.resolve());
    }).catch(function () { /* no signal after all: the outbox keeps them */ })
      .then(function () { sending = false; return render(); });
  }
  function send(r) {
    var body = new FormData();
    var url = r.kind === 'checkin' ? cfg.checkin : cfg.post;
    ['client_id', 'lon', 'lat', 'crs', 'category', 'description', 'reported_at', 'round_id', 'item_id'].forEach(function (k) {
      if (r[k] !== undefined && r[k] !== null) body.append(k, r[k]);
    });
    (r.photos || []).forEach(function (p, i) { body.append('photos', p, 'photo-' + i + '.jpg'); });
    var csrf = document.querySelector('meta[name="csrf-token"]').content;
    return fetch(url, {method: 'POST', body: body, credentials: 'same-origin', headers: {'X-CSRFToken': csrf}})
      .then(function (res) {
        return res.json().catch(function () { return {}; }).then(function (answer) {
          if (res.ok) {
            $('gg-msg').textContent = r.kind === 'checkin'
              ? fmt(T.checkedIn, {where: [answer.segment, answer.cell].filter(Boolean).join(' · ') || T.outside})
              : fmt(T.sent, {id: answer.id});
            $('gg-msg').className = 'gg-status gg-ok';
            return drop(r.client_id);
          }
          if (res.status === 400 || res.status === 403 || res.status === 413) {  // never accepted: say why, keep it
            r.error = answer.detail || String(res.status);
            return put(r);
          }
          return null;  // 409, 5xx, a login page …: try again later
        });
      });
  }

  $('gg-gps').addEventListener('click', function () {
    if (!navigator.geolocation) { $('gg-where').textContent = T.noGps; return; }
    navigator.geolocation.getCurrentPosition(function (pos) {
      $('gg-lon').value = pos.coords.longitude.toFixed(7);
      $('gg-lat').value = pos.coords.latitude.toFixed(7);
      $('gg-where').textContent = fmt(T.located, {lon: $('gg-lon').value, lat: $('gg-lat').value,
                                                  m: Math.round(pos.coords.accuracy || 0)});
    }, function (err) { $('gg-where').textContent = T.noGps + ' ' + err.message; },
    {enableHighAccuracy: true, timeout: 20000, maximumAge: 60000});
  });
  $('gg-phone-form').addEventListener('submit', function (e) {
    e.preventDefault();
    if (!$('gg-lon').value) { $('gg-msg').textContent = T.needPlace; $('gg-msg').className = 'gg-status gg-bad'; return; }
    var file = $('gg-photo').files[0];
    var round = $('gg-round') ? $('gg-round').value : '';
    if (round && !$('gg-item').value) { $('gg-msg').textContent = T.needItem; $('gg-msg').className = 'gg-status gg-bad'; return; }
    var record = {
      client_id: uuid(), lon: $('gg-lon').value, lat: $('gg-lat').value, crs: 'EPSG:4326',
      category: round ? '' : $('gg-category').value, description: $('gg-description').value,
      reported_at: new Date().toISOString(), created: new Date().toLocaleString(),
      photos: file ? [file] : []
    };
    if (round) {
      record.round_id = round; record.item_id = $('gg-item').value;
      record.item_label = $('gg-item').options[$('gg-item').selectedIndex].textContent.trim();
    }
    put(record).then(function () {
      $('gg-msg').textContent = T.kept;
      $('gg-msg').className = 'gg-status';
      $('gg-phone-form').reset();
      $('gg-lon').value = record.lon; $('gg-lat').value = record.lat;  // the next report is usually near
      if (round) { $('gg-round').value = round; showRound(); }  // an inspector records several findings in a row
      return render();
    }).then(flush);
  });
  function showRound() {  // a round picked: the checklist item says the category
    var on = !!($('gg-round') && $('gg-round').value);
    if ($('gg-item-label')) $('gg-item-label').hidden = !on;
    $('gg-category-label').hidden = on;
    $('gg-category').required = !on;
  }
  if ($('gg-round')) { $('gg-round').addEventListener('change', showRound); showRound(); }
  if ($('gg-checkin')) {
    $('gg-checkin').addEventListener('click', function () {
      if (!$('gg-lon').value) { $('gg-msg').textContent = T.needPlace; $('gg-msg').className = 'gg-status gg-bad'; return; }
      var record = {kind: 'checkin', client_id: uuid(), lon: $('gg-lon').value, lat: $('gg-lat').value, crs: 'EPSG:4326',
                    reported_at: new Date().toISOString(), created: new Date().toLocaleString(), photos: []};
      put(record).then(function () { $('gg-msg').textContent = T.kept; $('gg-msg').className = 'gg-status'; return render(); })
        .then(flush);
    });
  }
  window.addEventListener('online', function () { showNet(); flush(); });
  window.addEventListener('offline', showNet);
  setInterval(flush, 30000);
  showNet();
  render().then(flush);
  if ('serviceWorker' in navigator) {
    navigator.serviceWorker.register(cfg.worker, {scope: cfg.scope}).catch(function () { /* the page still works online */ });
  }
  window.ggPhoneOutbox = {all: all, flush: flush};
})();
