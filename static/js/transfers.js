// The transfers list reloads itself while a transfer is queued or running (the server marks the table).
(function () {
  "use strict";
  var table = document.querySelector("table.transfers[data-refresh-seconds]");
  if (!table) { return; }
  var seconds = parseInt(table.getAttribute("data-refresh-seconds"), 10) || 5;
  setTimeout(function () { window.location.reload(); }, seconds * 1000);
})();
