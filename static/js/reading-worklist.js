// The reading worklist kept current over /ws/worklist/ (order.changed events, worklist/consumers.py).
// A claim that changes is shown in its row at once; a case that becomes readable or leaves the list (final,
// cancelled) makes the page fetch its rows again from the server, which applies the filters and the order.
(function () {
  "use strict";
  var table = document.getElementById("reading-worklist");
  var status = document.getElementById("reading-live");
  if (!table || !status || !window.WebSocket || !window.fetch) { return; }
  var rows = table.querySelector("tbody");
  var userId = table.dataset.userId;
  var releasesAny = table.dataset.releasesAny === "1";
  // With "mine" or "unclaimed" a claim decides whether the row belongs on the page at all.
  var filteredByClaim = table.dataset.show !== "";
  var READING_STATUSES = ["completed", "preliminary"];
  var delay = 1000;
  var refreshTimer = null;

  function showClaim(row, event) {
    var claimedById = event.claimed_by_id === null || event.claimed_by_id === undefined ? "" : String(event.claimed_by_id);
    var claimed = claimedById !== "";
    var mine = claimed && claimedById === userId;
    row.dataset.claimedById = claimedById;
    row.querySelector(".claimed-by").textContent = claimed ? (event.claimed_by || "") : "\u2014";
    row.querySelector(".status").textContent = event.status_label || "";
    row.querySelector("form.claim").hidden = claimed;
    row.querySelector("form.release").hidden = !(mine || (claimed && releasesAny));
    row.classList.toggle("claimed", claimed);
    row.classList.toggle("mine", mine);
  }

  // Several events in a burst (a study arriving, its auto-assignment) make one request.
  function refresh() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(function () {
      fetch(table.dataset.rowsUrl + window.location.search, { credentials: "same-origin" })
        .then(function (response) {
          if (!response.ok) { throw new Error("HTTP " + response.status); }
          return response.text();
        })
        .then(function (html) {
          // The rows as the server's template rendered them (values escaped there), parsed, never run.
          var fresh = document.createElement("template");
          fresh.innerHTML = html;
          rows.replaceChildren(fresh.content);
        })
        .catch(function () { /* the next event, or the next reconnection, fetches again */ });
    }, 150);
  }

  function changed(event) {
    var row = document.getElementById("case-" + event.order_id);
    var readable = READING_STATUSES.indexOf(event.status) !== -1;
    if (!row) {
      if (readable) { refresh(); }
      return;
    }
    if (!readable) { refresh(); return; }
    var claimedById = event.claimed_by_id === null || event.claimed_by_id === undefined ? "" : String(event.claimed_by_id);
    if (filteredByClaim && claimedById !== row.dataset.claimedById) { refresh(); return; }
    showClaim(row, event);
  }

  function connect() {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + window.location.host + "/ws/worklist/");
    socket.onopen = function () {
      // Whatever changed while the page was not connected (since it was rendered, or while the connection was
      // down) is fetched once.
      refresh();
      delay = 1000;
      status.textContent = "live";
      status.classList.add("on");
    };
    socket.onmessage = function (message) {
      var event = JSON.parse(message.data);
      if (event.kind === "order.changed") { changed(event); }
    };
    socket.onclose = function (event) {
      status.textContent = "offline";
      status.classList.remove("on");
      if (event.code === 4401 || event.code === 4403) { return; }  // signed out, or not allowed: do not retry
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 30000);
    };
  }
  connect();
})();
