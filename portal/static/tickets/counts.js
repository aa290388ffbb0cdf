/* Live check-in figures on the organiser's dashboard: refreshed every ten seconds. */
(function () {
  "use strict";
  var section = document.getElementById("checkin-counts");
  if (!section || !section.dataset.countsUrl || document.getElementById("checkin")) { return; }
  function update(counts) {
    section.querySelectorAll("[data-count]").forEach(function (el) {
      var kind = el.dataset.count;
      var value = el.dataset.mode ? (counts[kind] || {})[el.dataset.mode] : counts[kind];
      if (value !== undefined && value !== null) { el.textContent = value; }
    });
  }
  window.setInterval(function () {
    fetch(section.dataset.countsUrl, { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(update, function () {});
  }, 10000);
})();
