/* gisgrid: small behaviours shared by every page (no inline handlers: the Content-Security-Policy forbids them). */
(function () {
  'use strict';
  /* The CSRF token for fetch() writes: send it as the X-CSRFToken header. */
  window.ggCsrfToken = function () {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : '';
  };
  /* <select data-autosubmit> and <input data-autosubmit> submit their form when changed. */
  document.addEventListener('change', function (e) {
    var el = e.target;
    if (el && el.hasAttribute && el.hasAttribute('data-autosubmit') && el.form) el.form.submit();
  });
})();
