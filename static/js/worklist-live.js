// Live order status on the RIS pages: listens to /ws/worklist/ and rewrites the status cell of each order shown
// (rows or blocks marked data-order-id inside a [data-live-orders] container) without reloading the page.
// The server decides which orders a user hears about; this file only displays them.
(function () {
  "use strict";
  var container = document.querySelector("[data-live-orders]");
  if (!container || !window.WebSocket) { return; }
  var hint = document.querySelector(".live-hint");
  var delay = 1000;

  function update(event) {
    if (event.kind !== "order.changed") { return; }
    var holders = container.querySelectorAll("[data-order-id]");
    for (var i = 0; i < holders.length; i++) {
      if (holders[i].getAttribute("data-order-id") !== String(event.order_id)) { continue; }
      var cell = holders[i].querySelector("[data-live-status]");
      if (!cell || cell.getAttribute("data-status") === event.status) { continue; }
      cell.textContent = event.status_label || event.status;  // textContent: server text is never HTML
      cell.className = cell.className.replace(/\bstatus-[a-z_]+/g, "") + " status-" + String(event.status).replace(/[^a-z_]/g, "");
      cell.setAttribute("data-status", event.status);
      holders[i].classList.add("changed");
      if (hint) { hint.hidden = false; }
    }
  }

  function connect() {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + window.location.host + "/ws/worklist/");
    socket.onopen = function () { delay = 1000; container.setAttribute("data-live", "on"); };
    socket.onmessage = function (message) {
      var event;
      try { event = JSON.parse(message.data); } catch (error) { return; }
      update(event);
    };
    socket.onclose = function (event) {
      container.setAttribute("data-live", "off");
      if (event.code === 4401 || event.code === 4403) { return; }  // signed out or not allowed: do not retry
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 30000);
    };
  }

  // The server renders the current status; remember it so a repeated event does not flag the row.
  var cells = container.querySelectorAll("[data-live-status]");
  for (var j = 0; j < cells.length; j++) {
    var match = /\bstatus-([a-z_]+)/.exec(cells[j].className);
    if (match) { cells[j].setAttribute("data-status", match[1]); }
  }
  connect();
})();
