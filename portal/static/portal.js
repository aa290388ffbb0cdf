// Portal's only script: behaviour attached by data attributes, so that pages need no inline
// script or on* handler (the Content-Security-Policy allows scripts from this site only).
document.addEventListener("click", function (event) {
  var target = event.target.closest ? event.target.closest("[data-print]") : null;
  if (target) {
    event.preventDefault();
    window.print();
  }
});

// A form sent back with errors: the focus goes to the first invalid field (else to the error
// summary), so keyboard and screen-reader users land where the correction is needed.
document.addEventListener("DOMContentLoaded", function () {
  var target = document.querySelector('main [aria-invalid="true"]') ||
    document.getElementById("error-summary");
  if (target && typeof target.focus === "function") {
    target.focus();
  }
});

// Tables of class "responsive" turn into one card per row on phones (portal.css): each cell
// is labelled with its column's header text, unless the template labelled it already.
document.addEventListener("DOMContentLoaded", function () {
  var tables = document.querySelectorAll("table.responsive");
  Array.prototype.forEach.call(tables, function (table) {
    var headers = table.querySelectorAll("thead th");
    var labels = Array.prototype.map.call(headers, function (th) {
      return (th.textContent || "").replace(/\s+/g, " ").trim();
    });
    Array.prototype.forEach.call(table.querySelectorAll("tbody tr"), function (row) {
      var column = 0;
      Array.prototype.forEach.call(row.children, function (cell) {
        var span = cell.colSpan || 1;
        if (span === 1 && labels[column] && !cell.hasAttribute("data-label")) {
          cell.setAttribute("data-label", labels[column]);
        }
        column += span;
      });
    });
  });
});
