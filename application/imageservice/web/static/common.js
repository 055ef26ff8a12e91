/* Shared helpers for every page: the JSON API with CSRF, errors in words, formatting,
   the workspace countdown and quota, toasts. Exposed as window.CIS (no build step). */
(function () {
  "use strict";

  var CIS = window.CIS = window.CIS || {};
  var WRITE_METHODS = { POST: 1, PUT: 1, PATCH: 1, DELETE: 1 };

  // Words for when the server could not send its own message (network failure, proxy page...).
  var STATUS_WORDS = {
    400: "The request was not accepted.",
    401: "Your workspace has expired. Reload the page to start a new one.",
    403: "That is not allowed. Reload the page and try again.",
    404: "That image no longer exists.",
    409: "That clashes with the image's current state.",
    413: "That is too large.",
    415: "That file type is not supported.",
    429: "Too many requests at once. Wait a moment and try again.",
    500: "Something went wrong on our side. Please try again.",
    502: "The service is briefly unavailable. Please try again.",
    503: "The service is briefly unavailable. Please try again.",
    504: "The service took too long to answer. Please try again."
  };

  function ApiError(status, code, message) {
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.message = message;
  }
  ApiError.prototype = Object.create(Error.prototype);
  ApiError.prototype.constructor = ApiError;
  CIS.ApiError = ApiError;

  CIS.csrfToken = function () {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  };

  /** The message an answer carries in {"error": {"code", "message"}}, else words for its status. */
  CIS.errorFromBody = function (status, body) {
    if (status === 401) return new ApiError(status, "unauthenticated", STATUS_WORDS[401]);
    if (body && body.error && typeof body.error.message === "string" && body.error.message) {
      return new ApiError(status, body.error.code || "error", body.error.message);
    }
    return new ApiError(status, "http_" + status, STATUS_WORDS[status] || "The request failed (HTTP " + status + ").");
  };

  /** Any failure in words, fit to show a person. */
  CIS.errorWords = function (error) {
    if (error instanceof ApiError) return CIS.sentence(error.message);
    if (error && error.name === "AbortError") return "Cancelled.";
    if (error instanceof TypeError) return "Could not reach the server. Check your connection and try again.";
    return (error && error.message) || "Something went wrong.";
  };

  /** Call the JSON API of this app. Writes carry the CSRF token; failures throw ApiError. */
  CIS.api = function (method, path, body) {
    var headers = { "Accept": "application/json" };
    var init = { method: method, headers: headers, credentials: "same-origin" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    if (WRITE_METHODS[method]) headers["X-CSRF-Token"] = CIS.csrfToken();
    return fetch(path, init).then(function (response) {
      if (response.status === 204) return null;
      return response.text().then(function (text) {
        var data = null;
        try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
        if (!response.ok) throw CIS.errorFromBody(response.status, data);
        return data;
      });
    });
  };

  CIS.imagePath = function (imageId) {
    return "/api/images/" + encodeURIComponent(imageId);
  };

  /** Ask for a short-lived URL of one variant of an image. */
  CIS.downloadUrl = function (imageId, variant) {
    return CIS.api("GET", CIS.imagePath(imageId) + "/download?variant=" + encodeURIComponent(variant))
      .then(function (answer) { return answer.download_url; });
  };

  /** Make the browser download a URL (any origin: the server sets Content-Disposition). */
  CIS.startDownload = function (url) {
    var link = document.createElement("a");
    link.href = url;
    link.rel = "noopener";
    link.setAttribute("download", "");
    document.body.appendChild(link);
    link.click();
    link.remove();
  };

  // ---- formatting -----------------------------------------------------------------------

  CIS.formatBytes = function (bytes) {
    if (typeof bytes !== "number" || !isFinite(bytes)) return "—";
    var units = ["B", "KB", "MB", "GB", "TB"];
    var size = bytes, unit = 0;
    while (size >= 1024 && unit < units.length - 1) { size /= 1024; unit += 1; }
    if (unit === 0) return size + " B";
    return (size < 100 ? size.toFixed(1) : Math.round(size)) + " " + units[unit];
  };

  CIS.formatSpeed = function (bytesPerSecond) {
    if (!(bytesPerSecond > 0)) return "";
    if (bytesPerSecond >= 1024 * 1024) return (bytesPerSecond / 1048576).toFixed(1) + " MB/s";
    return Math.max(1, Math.round(bytesPerSecond / 1024)) + " KB/s";
  };

  /** A server message as a sentence: capital first letter, final full stop. */
  CIS.sentence = function (text) {
    var clean = String(text || "").trim();
    if (!clean) return "";
    clean = clean.charAt(0).toUpperCase() + clean.slice(1);
    return /[.!?]$/.test(clean) ? clean : clean + ".";
  };

  CIS.formatNumber = function (n) {
    return typeof n === "number" ? n.toLocaleString() : String(n);
  };

  CIS.formatLocalTime = function (iso) {
    var date = new Date(iso);
    if (isNaN(date.getTime())) return iso || "";
    return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
  };

  /** "23 h 59 min", "4 min 05 s", "12 s". */
  CIS.formatRemaining = function (ms) {
    var total = Math.max(0, Math.floor(ms / 1000));
    var h = Math.floor(total / 3600), m = Math.floor((total % 3600) / 60), s = total % 60;
    function two(n) { return (n < 10 ? "0" : "") + n; }
    if (h > 0) return h + " h " + two(m) + " min " + two(s) + " s";
    if (m > 0) return m + " min " + two(s) + " s";
    return s + " s";
  };

  /** Build an element: el("p", {className: "x", text: "hi"}, [children]). Never parses HTML. */
  CIS.el = function (tag, props, children) {
    var node = document.createElement(tag);
    Object.keys(props || {}).forEach(function (key) {
      var value = props[key];
      if (value === undefined || value === null || value === false) return;
      if (key === "text") node.textContent = value;
      else if (key === "className") node.className = value;
      else if (key === "dataset") Object.keys(value).forEach(function (k) { node.dataset[k] = value[k]; });
      else if (key === "hidden") node.hidden = true;
      else node.setAttribute(key, value === true ? "" : value);
    });
    (children || []).forEach(function (child) {
      if (child === null || child === undefined || child === false) return;
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  };

  CIS.STATUS_WORDS = { pending: "Pending", processing: "Processing", ready: "Ready", rejected: "Rejected" };

  CIS.pill = function (status, words) {
    return CIS.el("span", { className: "pill pill-" + status, text: words || CIS.STATUS_WORDS[status] || status });
  };

  // ---- toasts -----------------------------------------------------------------------------

  CIS.toast = function (text, kind) {
    var region = document.getElementById("toasts");
    if (!region) return;
    var node = CIS.el("div", { className: "toast" + (kind === "error" ? " is-error" : ""), text: text });
    region.appendChild(node);
    setTimeout(function () { node.remove(); }, kind === "error" ? 8000 : 4000);
  };

  // A page may leave a message for the next one (e.g. "deleted" before going back to the gallery).
  CIS.leaveNotice = function (text) {
    try { sessionStorage.setItem("cis-notice", text); } catch (e) { /* storage off: no notice */ }
  };

  function showLeftNotice() {
    var text = null;
    try { text = sessionStorage.getItem("cis-notice"); sessionStorage.removeItem("cis-notice"); } catch (e) { text = null; }
    if (text) CIS.toast(text);
  }

  // ---- workspace: countdown and quota ---------------------------------------------------------

  function startCountdown() {
    var box = document.getElementById("workspace");
    var out = document.getElementById("countdown");
    if (!box || !out) return;
    var expires = new Date(box.dataset.expiresAt).getTime();
    if (isNaN(expires)) return;
    out.title = "Until " + CIS.formatLocalTime(box.dataset.expiresAt);
    function tick() {
      var left = expires - Date.now();
      if (left <= 0) {
        out.textContent = "expired — reload to start a new workspace";
        out.classList.add("expiring");
        return;
      }
      out.textContent = CIS.formatRemaining(left);
      out.classList.toggle("expiring", left < 3600 * 1000);
      setTimeout(tick, 1000 - (Date.now() % 1000) + 5);
    }
    tick();
  }

  function renderQuota(usage) {
    var box = document.getElementById("workspace");
    var text = document.getElementById("quota-text");
    var meter = document.getElementById("quota-meter");
    if (!box || !text) return;
    text.textContent = CIS.formatNumber(usage.images) + " of " + CIS.formatNumber(usage.quota_images) + " images · " +
      CIS.formatBytes(usage.bytes) + " of " + CIS.formatBytes(usage.quota_bytes);
    if (meter) {
      meter.max = usage.quota_bytes;
      meter.value = usage.bytes;
      meter.textContent = CIS.formatBytes(usage.bytes);
    }
    box.dataset.images = usage.images;
    box.dataset.bytes = usage.bytes;
  }

  var quotaTimer = null;
  /** Re-read usage and limits from /api/me (debounced: many uploads finish together). */
  CIS.refreshQuota = function () {
    clearTimeout(quotaTimer);
    quotaTimer = setTimeout(function () {
      CIS.api("GET", "/api/me").then(function (me) {
        renderQuota(me.usage);
        CIS.limits = me.limits;
      }).catch(function () { /* the header keeps its last numbers */ });
    }, 250);
  };

  function localizeTimes() {
    document.querySelectorAll("time.local-time").forEach(function (node) {
      var iso = node.getAttribute("datetime");
      if (iso) node.textContent = CIS.formatLocalTime(iso);
    });
  }

  startCountdown();
  localizeTimes();
  showLeftNotice();
})();
