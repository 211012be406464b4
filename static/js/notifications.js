// Live notifications for the signed-in user over /ws/notifications/, reconnecting with back-off.
(function () {
  "use strict";
  var list = document.getElementById("notifications");
  var status = document.getElementById("live-status");
  if (!list || !status || !window.WebSocket) { return; }
  var delay = 1000;

  function show(event) {
    var item = document.createElement("li");
    item.className = "notification " + (event.kind || "");
    item.textContent = event.message || "";  // textContent: never interpret server text as HTML
    list.appendChild(item);
    setTimeout(function () { item.remove(); }, 15000);
  }

  function connect() {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + window.location.host + "/ws/notifications/");
    socket.onopen = function () { delay = 1000; status.textContent = "live"; status.classList.add("on"); };
    socket.onmessage = function (message) { show(JSON.parse(message.data)); };
    socket.onclose = function (event) {
      status.textContent = "offline"; status.classList.remove("on");
      if (event.code === 4401) { return; }  // signed out: do not retry
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 30000);
    };
  }
  connect();
})();
