/* For online visitors elsewhere: beside each time in the event's zone, the reader's own time. */
(function () {
  "use strict";
  var note = document.getElementById("timezone-note");
  if (!note || !window.Intl) { return; }
  var eventZone = note.dataset.eventZone;
  var readerZone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (!readerZone || readerZone === eventZone) { return; }
  var lang = document.documentElement.lang || "en";
  var format = new Intl.DateTimeFormat(lang, { hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZone: readerZone });
  var day = new Intl.DateTimeFormat(lang, { month: "short", day: "numeric", timeZone: readerZone });
  var eventDay = new Intl.DateTimeFormat("en-CA", { timeZone: eventZone });
  var readerDay = new Intl.DateTimeFormat("en-CA", { timeZone: readerZone });
  document.querySelectorAll("time[data-local]").forEach(function (el) {
    var when = new Date(el.getAttribute("datetime"));
    if (isNaN(when)) { return; }
    var text = format.format(when);
    if (eventDay.format(when) !== readerDay.format(when)) { text = day.format(when) + " " + text; }
    var local = document.createElement("span");
    local.className = "reader-time";
    local.textContent = " (" + text + ")";
    el.after(local);
  });
  var extra = document.createElement("span");
  extra.className = "reader-zone";
  extra.textContent = " " + note.dataset.template.replace("{zone}", readerZone);
  note.appendChild(extra);
})();
