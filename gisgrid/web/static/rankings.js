// Sorting of the ranking tables: click (or Enter on) a column header; numbers by value, text by the locale.
(function () {
  "use strict";
  function sortBy(table, th) {
    var col = th.getAttribute("data-col");
    var asc = th.getAttribute("aria-sort") !== "ascending";
    table.querySelectorAll("th").forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", asc ? "ascending" : "descending");
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = a.querySelector('td[data-col="' + col + '"]').getAttribute("data-sort");
      var y = b.querySelector('td[data-col="' + col + '"]').getAttribute("data-sort");
      if (x === "" || y === "") return (x === "") - (y === "");  // no value: last either way
      var nx = Number(x), ny = Number(y);
      if (isFinite(nx) && isFinite(ny)) return asc ? nx - ny : ny - nx;
      return asc ? x.localeCompare(y) : y.localeCompare(x);
    });
    rows.forEach(function (row) { body.appendChild(row); });
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll(".gg-ranking-table").forEach(function (table) {
      table.querySelectorAll("th[data-col]").forEach(function (th) {
        th.addEventListener("click", function () { sortBy(table, th); });
        th.addEventListener("keydown", function (e) { if (e.key === "Enter") sortBy(table, th); });
      });
    });
  });
})();
