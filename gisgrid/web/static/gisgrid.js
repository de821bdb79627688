/* gisgrid: small behaviours shared by every page (no inline handlers: the Content-Security-Policy forbids them). */
(function () {
  'use strict';
  /* The CSRF token for fetch() writes: send it as the X-CSRFToken header. */
  window.ggCsrfToken = function () {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : '';
  };
  /* The menu button of narrow screens opens and closes the menu. */
  document.addEventListener('click', function (e) {
    var button = e.target && e.target.closest ? e.target.closest('#gg-menu-toggle') : null;
    if (!button) return;
    var header = button.closest('.gg-top');
    var open = header.classList.toggle('gg-nav-open');
    button.setAttribute('aria-expanded', open ? 'true' : 'false');
  });
  /* On a phone, filter forms and side legends fold behind a summary line: the map comes first. */
  var FOLDS = [['form.gg-filter', 'filters'], ['aside.gg-side', 'legend']];
  function foldPanels() {
    if (window.innerWidth > 900) return;
    var meta = document.querySelector('meta[name="gg-map-config"]'), words = {};
    try { words = JSON.parse(meta.content).words || {}; } catch (e) { /* no words: the English ones below */ }
    FOLDS.forEach(function (fold) {
      document.querySelectorAll(fold[0]).forEach(function (panel) {
        if (panel.closest('details.gg-fold')) return;
        var details = document.createElement('details');
        details.className = 'gg-fold';
        var summary = document.createElement('summary');
        summary.textContent = words[fold[1]] || (fold[1] === 'filters' ? 'Filters' : 'Legend');
        details.appendChild(summary);
        panel.parentNode.insertBefore(details, panel);
        details.appendChild(panel);
      });
    });
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', foldPanels);
  else foldPanels();
  /* <select data-autosubmit> and <input data-autosubmit> submit their form when changed. */
  document.addEventListener('change', function (e) {
    var el = e.target;
    if (el && el.hasAttribute && el.hasAttribute('data-autosubmit') && el.form) el.form.submit();
  });
  /* <input list="…" data-people-search="URL">: offer people and departments (by id) as the user types. */
  var timer = null;
  document.addEventListener('input', function (e) {
    var el = e.target;
    if (!el || !el.hasAttribute || !el.hasAttribute('data-people-search')) return;
    var list = document.getElementById(el.getAttribute('list'));
    var q = el.value.trim();
    if (!list || !q || /^(person|department):[0-9]+$/.test(q)) return;
    clearTimeout(timer);
    timer = setTimeout(function () {
      fetch(el.getAttribute('data-people-search') + '?q=' + encodeURIComponent(q), {credentials: 'same-origin'})
        .then(function (r) { return r.ok ? r.json() : {people: []}; })
        .then(function (body) {
          list.textContent = '';
          body.people.forEach(function (p) {
            var opt = document.createElement('option');
            opt.value = p.key;
            opt.textContent = p.label;
            list.appendChild(opt);
          });
        });
    }, 200);
  });
})();
