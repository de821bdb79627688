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
