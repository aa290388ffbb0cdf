/* Check-in on a phone: scan tickets with the camera (jsQR, vendored in /static/vendor/jsqr),
   or search by name. Every answer comes from the server (green / amber / red); the same
   code is not sent twice within a few seconds, and the server counts a person only once. */
(function () {
  "use strict";
  var root = document.getElementById("checkin");
  if (!root) { return; }
  var csrf = document.querySelector('meta[name="csrf-token"]').getAttribute("content");
  var point = root.dataset.point || "event";
  var box = document.getElementById("checkin-result");
  var video = document.getElementById("checkin-video");
  var canvas = document.getElementById("checkin-canvas");
  var startButton = document.getElementById("checkin-camera");
  var context = canvas.getContext("2d", { willReadFrequently: true });
  var lastCode = "";
  var lastAt = 0;
  var busy = false;

  function show(colour, headline, name, detail) {
    box.className = "checkin-result " + colour;
    box.dataset.colour = colour;
    box.querySelector(".headline").textContent = headline;
    box.querySelector(".name").textContent = name || "";
    box.querySelector(".detail").textContent = detail || "";
  }

  function updateCounts(counts) {
    if (!counts) { return; }
    document.querySelectorAll("#checkin-counts [data-count]").forEach(function (el) {
      var kind = el.dataset.count;
      var value = el.dataset.mode ? (counts[kind] || {})[el.dataset.mode] : counts[kind];
      if (value !== undefined && value !== null) { el.textContent = value; }
    });
  }

  function post(url, data) {
    var body = new URLSearchParams(data);
    body.set("point", point);
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrf, "Accept": "application/json" },
      body: body
    }).then(function (response) {
      if (!response.ok) { throw new Error(String(response.status)); }
      return response.json();
    });
  }

  function answer(result) {
    show(result.colour, result.message, [result.name, result.affiliation].filter(Boolean).join(" · "), result.detail);
    updateCounts(result.counts);
    if (navigator.vibrate) { navigator.vibrate(result.colour === "green" ? 80 : [80, 60, 80]); }
  }

  function failed() { show("red", root.dataset.msgError, "", ""); }

  function sendToken(token) {
    busy = true;
    post(root.dataset.scanUrl, { token: token }).then(answer, failed).then(function () { busy = false; });
  }

  function tick() {
    if (video.readyState === video.HAVE_ENOUGH_DATA && !busy && window.jsQR) {
      var w = video.videoWidth, h = video.videoHeight;
      if (w && h) {
        canvas.width = w; canvas.height = h;
        context.drawImage(video, 0, 0, w, h);
        var image = context.getImageData(0, 0, w, h);
        var code = window.jsQR(image.data, w, h, { inversionAttempts: "dontInvert" });
        var now = Date.now();
        if (code && code.data && (code.data !== lastCode || now - lastAt > 4000)) {
          lastCode = code.data; lastAt = now;
          sendToken(code.data);
        }
      }
    }
    window.requestAnimationFrame(tick);
  }

  function startCamera() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      show("idle", root.dataset.msgCameraOff, "", "");
      return;
    }
    navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false })
      .then(function (stream) {
        video.srcObject = stream;
        video.setAttribute("playsinline", "");
        startButton.style.display = "none";
        return video.play();
      })
      .then(function () { window.requestAnimationFrame(tick); })
      .catch(function () { show("idle", root.dataset.msgCameraOff, "", ""); });
  }

  startButton.addEventListener("click", startCamera);
  startCamera();

  // Typed search: the fallback when a ticket is not at hand.
  var list = document.getElementById("checkin-results");
  document.getElementById("checkin-search").addEventListener("submit", function (e) {
    e.preventDefault();
    var q = document.getElementById("checkin-q").value.trim();
    if (!q) { return; }
    var url = root.dataset.searchUrl + "?" + new URLSearchParams({ q: q, point: point });
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.json(); })
      .then(function (data) {
        list.textContent = "";
        if (!data.results.length) {
          var none = document.createElement("li");
          none.className = "card";
          none.textContent = root.dataset.msgNone;
          list.appendChild(none);
        }
        data.results.forEach(function (r) {
          var li = document.createElement("li");
          li.className = "card";
          li.dataset.registration = r.id;
          var name = document.createElement("strong");
          name.textContent = r.name;
          var meta = document.createElement("div");
          meta.className = "meta";
          meta.textContent = [r.kana, r.affiliation, r.mode, r.state].filter(Boolean).join(" · ");
          var button = document.createElement("button");
          button.type = "button";
          button.textContent = r.checked_in ? root.dataset.msgCheckedIn : root.dataset.msgCheckIn;
          button.className = r.checked_in ? "secondary" : "";
          button.addEventListener("click", function () {
            post(root.dataset.checkinUrl.replace(/\/0$/, "/" + r.id), {}).then(function (result) {
              answer(result);
              if (result.colour !== "red") {
                button.textContent = root.dataset.msgCheckedIn;
                button.className = "secondary";
              }
            }, failed);
          });
          li.appendChild(name); li.appendChild(meta); li.appendChild(button);
          list.appendChild(li);
        });
      }, failed);
  });

  // The figures of the other phones, every ten seconds.
  window.setInterval(function () {
    fetch(root.dataset.countsUrl, { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(updateCounts, function () {});
  }, 10000);
})();
