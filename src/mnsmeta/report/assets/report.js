(function () {
  "use strict";
  function key(cell) {
    var sort = cell.getAttribute("data-sort");
    if (sort !== null) { return { empty: false, number: parseFloat(sort), text: "" }; }
    var text = cell.textContent.trim();
    return { empty: text === "", number: NaN, text: text.toLowerCase() };
  }
  function compare(a, b) {
    if (a.empty || b.empty) { return a.empty === b.empty ? 0 : (a.empty ? 1 : -1); }
    var aNumber = !isNaN(a.number), bNumber = !isNaN(b.number);
    if (aNumber && bNumber) { return a.number - b.number; }
    if (aNumber !== bNumber) { return aNumber ? -1 : 1; }
    return a.text.localeCompare(b.text, undefined, { numeric: true });
  }
  function sortBy(table, header, column) {
    var ascending = header.getAttribute("aria-sort") !== "ascending";
    var headers = table.tHead.rows[0].cells;
    for (var i = 0; i < headers.length; i++) { headers[i].removeAttribute("aria-sort"); }
    header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (x, y) {
      var a = key(x.cells[column]), b = key(y.cells[column]);
      if (a.empty || b.empty) { return compare(a, b); }  // empty cells stay last
      return ascending ? compare(a, b) : compare(b, a);
    });
    rows.forEach(function (row) { body.appendChild(row); });
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    if (!table.tHead || !table.tBodies.length) { return; }
    var headers = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(headers, function (header, column) {
      header.addEventListener("click", function () { sortBy(table, header, column); });
    });
  });
})();
