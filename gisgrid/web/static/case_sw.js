/* gisgrid phone page service worker: the page and its assets from the network when there is one,
 * from the cache when there is none.  Reports themselves wait in IndexedDB (case_phone.js), not here. */
'use strict';
var CACHE = 'gisgrid-phone-v2';
var SHELL = ['./', '../../static/gisgrid.css', '../../static/cases.css', '../../static/case_phone.js',
             '../../static/inspections.css'];

self.addEventListener('install', function (event) {
  event.waitUntil(caches.open(CACHE).then(function (c) { return c.addAll(SHELL); }).then(function () {
    return self.skipWaiting();
  }));
});
self.addEventListener('activate', function (event) {
  event.waitUntil(caches.keys().then(function (keys) {
    return Promise.all(keys.filter(function (k) { return k !== CACHE; }).map(function (k) { return caches.delete(k); }));
  }).then(function () { return self.clients.claim(); }));
});
self.addEventListener('fetch', function (event) {
  var req = event.request;
  if (req.method !== 'GET') return;  // reports go to the server or stay in the outbox
  event.respondWith(fetch(req).then(function (res) {
    if (res.ok && res.type === 'basic') {
      var copy = res.clone();
      caches.open(CACHE).then(function (c) { c.put(req, copy); });
    }
    return res;
  }).catch(function () {
    return caches.match(req, {ignoreSearch: true});
  }));
});
