// Kapok checkout: counts the reservation down and reloads the page once the order's state
// changes (a payment confirmed, an expiry). Served by Kapok itself: the CSP allows no inline
// or third-party script. Without JavaScript the page offers a refresh link instead.
(function () {
  "use strict";
  var status = document.getElementById("order-status");
  if (!status || !window.fetch) { return; }
  var stateUrl = status.getAttribute("data-state-url");
  var state = status.getAttribute("data-state");
  var countdown = document.querySelector("[data-countdown]");
  var POLL_MS = 3000, MAX_POLLS = 1200;  // about an hour, then the refresh link remains
  var polls = 0;

  function showCountdown() {
    if (!countdown) { return; }
    var left = Math.floor((Date.parse(countdown.getAttribute("datetime")) - Date.now()) / 1000);
    if (isNaN(left)) { return; }
    if (left <= 0) { countdown.textContent = "now (the reservation has run out)"; return; }
    var minutes = Math.floor(left / 60), seconds = left % 60;
    countdown.textContent = minutes + ":" + (seconds < 10 ? "0" : "") + seconds + " from now";
    setTimeout(showCountdown, 1000);
  }

  function poll() {
    polls += 1;
    fetch(stateUrl, { headers: { "Accept": "application/json" }, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (order) {
        if (order && order.state !== state) { window.location.reload(); return; }
        if (polls < MAX_POLLS) { setTimeout(poll, POLL_MS); }
      })
      .catch(function () { if (polls < MAX_POLLS) { setTimeout(poll, POLL_MS * 2); } });
  }

  showCountdown();
  setTimeout(poll, POLL_MS);
})();
