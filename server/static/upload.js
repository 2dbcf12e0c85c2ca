// The upload page: drag and drop, a progress bar, and restarting a dropped upload.
// The form's fields go before the file (consent first), with the CSRF token in a header.
(function () {
  "use strict";
  var form = document.getElementById("upload-form");
  if (!form) return;
  var fileInput = document.getElementById("file");
  var drop = document.getElementById("drop");
  var fileName = document.getElementById("file-name");
  var consent = document.getElementById("consent");
  var button = document.getElementById("upload-button");
  var box = document.getElementById("upload-progress-box");
  var bar = document.getElementById("upload-progress");
  var statusText = document.getElementById("upload-status");
  var retryButton = document.getElementById("upload-retry");
  var errorText = document.getElementById("upload-error");
  var maxBytes = Number(form.dataset.maxBytes || 0);
  var numbers = new Intl.NumberFormat(document.documentElement.lang || "en");
  var AUTO_RETRIES = 3;
  var chosen = null;
  var attempt = 0;
  var busy = false;

  function text(name, values) {
    var raw = form.dataset[name] || "";
    return raw.replace(/\{(\w+)\}/g, function (match, key) {
      return values && key in values ? values[key] : match;
    });
  }

  function showError(message) {
    errorText.textContent = message;
    errorText.hidden = !message;
  }

  function setBusy(value) {
    busy = value;
    button.disabled = value;
    Array.prototype.forEach.call(form.querySelectorAll("input, select"), function (el) {
      el.disabled = value;
    });
  }

  function choose(file) {
    showError("");
    if (!file) return;
    if (maxBytes && file.size > maxBytes) {
      chosen = null;
      fileName.hidden = true;
      showError(text("msgTooBig"));
      return;
    }
    chosen = file;
    fileName.textContent = file.name;
    fileName.hidden = false;
  }

  fileInput.addEventListener("change", function () {
    choose(fileInput.files && fileInput.files[0]);
  });

  ["dragenter", "dragover"].forEach(function (type) {
    drop.addEventListener(type, function (event) {
      event.preventDefault();
      if (!busy) drop.classList.add("over");
    });
  });
  ["dragleave", "dragend", "drop"].forEach(function (type) {
    drop.addEventListener(type, function () {
      drop.classList.remove("over");
    });
  });
  drop.addEventListener("drop", function (event) {
    event.preventDefault();
    if (busy) return;
    var files = event.dataTransfer && event.dataTransfer.files;
    if (files && files.length) choose(files[0]);
  });
  // a file dropped beside the zone must not replace the page
  window.addEventListener("dragover", function (event) { event.preventDefault(); });
  window.addEventListener("drop", function (event) { event.preventDefault(); });

  function options() {
    var result = {};
    var maxClips = parseInt(form.max_clips.value, 10);
    var minSeconds = parseFloat(form.min_seconds.value);
    var maxSeconds = parseFloat(form.max_seconds.value);
    if (maxClips > 0) result.max_clips = maxClips;
    if (minSeconds > 0) result.min_seconds = minSeconds;
    if (maxSeconds > 0) result.max_seconds = maxSeconds;
    if (form.language.value && form.language.value !== "auto") result.language = form.language.value;
    if (form.caption_style.value) result.caption_style = form.caption_style.value;
    return result;
  }

  function errorMessage(status, body) {
    var code = body && body.error && body.error.code;
    if (code) {
      var key = "error" + code.split("_").map(function (part) {
        return part.charAt(0).toUpperCase() + part.slice(1);
      }).join("");
      if (form.dataset[key]) return form.dataset[key];
    }
    if (body && body.error && body.error.message) return body.error.message;
    return text("msgFailed") + " (HTTP " + status + ")";
  }

  function send(opts) {
    var data = new FormData();
    data.append("consent", "true");
    data.append("consent_version", form.consent_version.value);
    data.append("options", JSON.stringify(opts));
    data.append("file", chosen, chosen.name);

    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.setRequestHeader("X-CSRF-Token", form.dataset.csrf);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.responseType = "json";
    retryButton.hidden = true;
    box.hidden = false;
    bar.value = 0;
    statusText.textContent = text("msgSending", { percent: numbers.format(0) });

    xhr.upload.addEventListener("progress", function (event) {
      if (!event.lengthComputable) return;
      var percent = Math.floor((event.loaded / event.total) * 100);
      bar.value = percent;
      statusText.textContent = text(
        percent >= 100 ? "msgProcessing" : "msgSending", { percent: numbers.format(percent) }
      );
    });
    xhr.addEventListener("load", function () {
      var body = xhr.response;
      if (xhr.status === 202 && body && body.url) {
        bar.value = 100;
        statusText.textContent = text("msgProcessing", { percent: numbers.format(100) });
        window.location.assign(body.url);
        return;
      }
      setBusy(false);
      showError(errorMessage(xhr.status, body));
      statusText.textContent = "";
      box.hidden = xhr.status < 500;
      retryButton.hidden = xhr.status < 500;
    });
    function dropped() {
      if (attempt < AUTO_RETRIES) {
        attempt += 1;
        var delay = 1000 * Math.pow(2, attempt - 1);
        statusText.textContent = text("msgRetrying", { attempt: attempt, total: AUTO_RETRIES });
        window.setTimeout(function () { send(opts); }, delay);
        return;
      }
      setBusy(false);
      statusText.textContent = text("msgLost");
      retryButton.hidden = false;
    }
    xhr.addEventListener("error", dropped);
    xhr.addEventListener("timeout", dropped);
    xhr.send(data);
  }

  function start() {
    showError("");
    if (!chosen) { showError(text("msgChoose")); return; }
    if (!consent.checked) { showError(text("msgConsent")); consent.focus(); return; }
    var opts = options();
    attempt = 0;
    setBusy(true);
    send(opts);
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (!busy) start();
  });
  retryButton.addEventListener("click", function () {
    if (!busy) start();
  });
})();
