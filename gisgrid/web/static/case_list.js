/* gisgrid case lists: the owner box suggests people as you type (name · #number · places), so that two
 * people of one name stay apart; the server reads the number back.  Labels are set as text only. */
(function () {
  'use strict';
  var box = document.getElementById('gg-owner');
  var list = document.getElementById('gg-owner-list');
  if (!box || !list || !window.fetch) return;
  var timer = null, asked = '';
  box.addEventListener('input', function () {
    clearTimeout(timer);
    timer = setTimeout(function () {
      var q = box.value.trim();
      if (!q || q === asked || q.indexOf('#') >= 0) return;
      asked = q;
      fetch(box.dataset.url + '?q=' + encodeURIComponent(q), {credentials: 'same-origin'})
        .then(function (r) { return r.ok ? r.json() : {people: []}; })
        .then(function (body) {
          while (list.firstChild) list.removeChild(list.firstChild);
          (body.people || []).forEach(function (p) {
            var option = document.createElement('option');
            option.value = p.label;
            list.appendChild(option);
          });
        })
        .catch(function () { /* offline: typing a whole name still works */ });
    }, 200);
  });
})();
