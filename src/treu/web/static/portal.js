// The member portal's only script: keep the till QR code fresh, offer the phone's share sheet.
// Everything works without it, except that the QR code then needs a reload to renew.
(function () {
  "use strict";

  var figure = document.getElementById("qr");
  if (figure) {
    // A token is valid in its 30-second step and the next: renewing every 25 seconds keeps a
    // valid one on screen, whatever the phone's clock says.
    var every = Math.max(5, (parseInt(figure.dataset.refresh, 10) || 30) - 5) * 1000;
    var timer = null;
    var renew = function () {
      fetch(figure.dataset.url, { credentials: "same-origin", cache: "no-store" })
        .then(function (response) {
          if (response.status === 401) {
            window.location.reload();
            return null;
          }
          return response.ok ? response.json() : null;
        })
        .then(function (fresh) {
          if (!fresh) return;
          document.getElementById("qr-box").innerHTML = fresh.svg;
          document.getElementById("qr-token").textContent = fresh.token;
          figure.dataset.token = fresh.token;
          figure.dataset.expires = fresh.expires_at;
        })
        .catch(function () { /* offline: try again at the next tick */ });
    };
    var start = function () {
      if (timer) window.clearInterval(timer);
      timer = window.setInterval(renew, every);
    };
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "visible") {
        renew();
        start();
      }
    });
    start();
  }

  var share = document.querySelector("button.share");
  if (share && navigator.share) {
    share.hidden = false;
    share.addEventListener("click", function () {
      navigator.share({ title: share.dataset.title, url: share.dataset.share }).catch(function () {});
    });
  }
})();
