/* Uploads straight to storage: ask the API for a ticket, PUT the bytes to its upload_url with
   exactly its upload_headers (S3 or the local blob endpoint, maybe another origin), tell the API
   it is complete. One row per file with progress, speed and Cancel. */

import { ApiError, api, errorFromBody, imagePath } from "./api.js";
import { config } from "./config.js";
import { el, toast } from "./dom.js";
import { errorWords, formatBytes, formatSpeed, rejectionWords } from "./words.js";
import { currentLimits } from "./workspace.js";

const PARALLEL = 3;
const EXTENSION_TYPES = config.extension_types || {};
const ALLOWED_TYPES = new Set(config.upload_content_types || []);
const FORMATS_WORDS = config.upload_formats_words || "images";

/** Start the uploader; ``gallery`` (may be null) shows the new images and says how they end. */
export function createUploader(gallery) {
  var zone = document.getElementById("dropzone");
  if (!zone) return;
  var input = document.getElementById("file-input");
  var chooser = document.getElementById("choose-files");
  var list = document.getElementById("upload-list");
  var tagsInput = document.getElementById("upload-tags");
  var descriptionInput = document.getElementById("upload-description");

  var queue = [];
  var running = 0;
  var byImage = new Map();   // image_id -> upload, to report how processing ended

  function maxUploadBytes() {
    return currentLimits().max_upload_bytes || Number(zone.dataset.maxUploadBytes) || Infinity;
  }

  function extensionOf(name) {
    var dot = name.lastIndexOf(".");
    return dot < 0 ? "" : name.slice(dot + 1).toLowerCase();
  }

  /** The type to declare, or null when the file is not one we take. */
  function declaredType(file) {
    var type = (file.type || "").toLowerCase();
    if (ALLOWED_TYPES.has(type)) return type;
    if (!type || type === "application/octet-stream") return EXTENSION_TYPES[extensionOf(file.name)] || null;
    return null;
  }

  /** Why this file cannot be sent, in words; null when it may go. */
  function refusal(file) {
    if (!declaredType(file)) {
      return "\u201c" + file.name + "\u201d is not a supported image type. Choose " + FORMATS_WORDS + " files.";
    }
    if (file.size === 0) return "\u201c" + file.name + "\u201d is empty.";
    var limit = maxUploadBytes();
    if (file.size > limit) {
      return "\u201c" + file.name + "\u201d is " + formatBytes(file.size) + "; the limit is " +
        formatBytes(limit) + " per file.";
    }
    return null;
  }

  // ---- one row per file -------------------------------------------------------------------

  function makeRow(file) {
    var row = {
      pill: el("span", { className: "pill pill-pending", text: "Waiting" }),
      amount: el("span", { className: "upload-amount", text: formatBytes(file.size) }),
      speed: el("span", { className: "upload-speed" }),
      progress: el("progress", { max: "100", value: "0", "aria-label": "Upload of " + file.name }),
      message: el("p", { className: "upload-message" }),
      cancel: el("button", { type: "button", className: "button small", text: "Cancel", "aria-label": "Cancel upload of " + file.name }),
      dismiss: el("button", { type: "button", className: "button subtle small", text: "Dismiss", "aria-label": "Dismiss " + file.name, hidden: true })
    };
    row.node = el("li", { className: "upload-item" }, [
      el("div", { className: "upload-head" }, [
        el("div", { className: "upload-name", title: file.name, text: file.name }),
        el("div", { className: "upload-meta" }, [row.pill, row.amount, row.speed])
      ]),
      el("div", { className: "upload-actions" }, [row.cancel, row.dismiss]),
      row.progress,
      row.message
    ]);
    row.dismiss.addEventListener("click", function () { row.node.remove(); });
    list.appendChild(row.node);
    return row;
  }

  function setState(upload, state, words, message, bad) {
    var row = upload.row;
    upload.state = state;
    row.pill.className = "pill pill-" + state;
    row.pill.textContent = words;
    row.message.textContent = message || "";
    row.message.hidden = !message;
    row.node.classList.toggle("is-bad", Boolean(bad));
    var finished = ["cancelled", "refused", "failed", "ready", "rejected"].indexOf(state) >= 0;
    row.cancel.hidden = finished || state === "finishing" || state === "uploaded";
    row.dismiss.hidden = !finished;
    if (finished || state === "uploaded" || state === "finishing") row.speed.textContent = "";
    if (state !== "uploading") row.progress.hidden = state !== "finishing" && state !== "uploaded";
  }

  // ---- the flow ---------------------------------------------------------------------------

  function addFiles(files) {
    Array.prototype.forEach.call(files, function (file) {
      var upload = { file: file, row: makeRow(file), state: "queued", imageId: null, xhr: null };
      upload.row.cancel.addEventListener("click", function () { cancel(upload); });
      var reason = refusal(file);
      if (reason) {
        setState(upload, "refused", "Not sent", reason, true);
        return;
      }
      setState(upload, "queued", "Waiting", "");
      upload.row.progress.hidden = true;
      queue.push(upload);
    });
    pump();
  }

  function pump() {
    while (running < PARALLEL && queue.length) {
      var upload = queue.shift();
      if (upload.state !== "queued") continue;
      running += 1;
      start(upload).then(done, done);
    }
  }

  function done() {
    running -= 1;
    pump();
  }

  function start(upload) {
    var file = upload.file;
    setState(upload, "uploading", "Starting", "");
    upload.row.progress.hidden = false;
    upload.row.progress.removeAttribute("value");   // indeterminate until bytes move
    return api("POST", "/api/images/upload", {
      content_type: declaredType(file),
      size: file.size,
      filename: file.name,
      tags: tagsInput.value,
      description: descriptionInput.value
    }).then(function (ticket) {
      upload.imageId = ticket.image_id;
      byImage.set(ticket.image_id, upload);
      if (upload.state === "cancelled") { forget(upload); return null; }
      gallery && gallery.addUpload({
        image_id: ticket.image_id, status: "pending", filename: file.name, size: file.size,
        tags: ticket.tags || [], created_at: new Date().toISOString()
      });
      return put(upload, ticket).then(function () {
        setState(upload, "finishing", "Finishing", "");
        return api("POST", imagePath(ticket.image_id) + "/complete").catch(function () {
          // Storage events start processing too (aws mode); the gallery follows the status anyway.
          return null;
        });
      }).then(function () {
        setState(upload, "uploaded", "Uploaded", "Checking the image…");
        upload.row.progress.value = 100;
        gallery && gallery.uploaded(ticket.image_id);
      });
    }).catch(function (error) {
      if (upload.state === "cancelled") return;
      setState(upload, "failed", "Failed", errorWords(error), true);
      if (upload.imageId) forget(upload);
    });
  }

  /** PUT the file to the presigned URL with its headers and nothing else (no cookies, no CSRF). */
  function put(upload, ticket) {
    return new Promise(function (resolve, reject) {
      var xhr = new XMLHttpRequest();
      var samples = [];
      upload.xhr = xhr;
      xhr.open(ticket.upload_method || "PUT", ticket.upload_url, true);
      xhr.withCredentials = false;
      Object.keys(ticket.upload_headers || {}).forEach(function (name) {
        if (/^(content-length|host)$/i.test(name)) return;   // the browser sets these itself
        xhr.setRequestHeader(name, ticket.upload_headers[name]);
      });
      xhr.upload.addEventListener("progress", function (event) {
        if (!event.lengthComputable || upload.state !== "uploading") return;
        var now = performance.now();
        samples.push([now, event.loaded]);
        while (samples.length > 2 && now - samples[0][0] > 2000) samples.shift();
        var first = samples[0], seconds = (now - first[0]) / 1000;
        var percent = Math.floor(event.loaded / event.total * 100);
        var row = upload.row;
        row.pill.textContent = "Uploading " + percent + "%";
        row.progress.value = percent;
        row.amount.textContent = formatBytes(event.loaded) + " of " + formatBytes(event.total);
        if (seconds > 0.2) row.speed.textContent = formatSpeed((event.loaded - first[1]) / seconds);
        gallery && gallery.progress(ticket.image_id, percent);
      });
      xhr.addEventListener("load", function () {
        if (xhr.status >= 200 && xhr.status < 300) { resolve(); return; }
        var body = null;
        try { body = JSON.parse(xhr.responseText); } catch (e) { body = null; }
        var error = errorFromBody(xhr.status, body);
        if (!body) error.message = "Storage refused the upload (HTTP " + xhr.status + ").";
        reject(error);
      });
      xhr.addEventListener("error", function () {
        reject(new ApiError(0, "network", "The upload was interrupted. Check your connection and try again."));
      });
      xhr.addEventListener("abort", function () {
        reject(new ApiError(0, "cancelled", "Cancelled."));
      });
      upload.row.progress.value = 0;
      xhr.send(upload.file);
    });
  }

  function cancel(upload) {
    if (["queued", "uploading"].indexOf(upload.state) < 0) return;
    var wasSending = upload.xhr;
    setState(upload, "cancelled", "Cancelled", "The upload was cancelled; nothing was kept.", false);
    upload.row.progress.hidden = true;
    if (wasSending) wasSending.abort();
    if (upload.imageId) forget(upload);
    toast("Cancelled " + upload.file.name + ".");
  }

  /** Drop the record of an upload that will never arrive, so it does not linger as pending. */
  function forget(upload) {
    var id = upload.imageId;
    gallery && gallery.remove(id);
    api("DELETE", imagePath(id)).catch(function () { /* swept later */ })
      .then(function () { gallery && gallery.remove(id); });
  }

  // How processing ended, told by the gallery's live status.
  if (gallery) gallery.onChange(function (record) {
    var upload = byImage.get(record.image_id);
    if (!upload || upload.state !== "uploaded") return;
    if (record.status === "ready") {
      setState(upload, "ready", "Ready", "");
      upload.row.progress.hidden = true;
    } else if (record.status === "rejected") {
      var reason = rejectionWords(record.error);
      setState(upload, "rejected", "Rejected", reason, true);
      upload.row.progress.hidden = true;
    } else if (record.status === "processing") {
      upload.row.message.textContent = "Processing…";
    }
  });

  // ---- picking and dropping ---------------------------------------------------------------

  chooser.addEventListener("click", function () { input.click(); });
  input.addEventListener("change", function () {
    if (input.files && input.files.length) addFiles(input.files);
    input.value = "";
  });

  function carriesFiles(event) {
    var types = event.dataTransfer && event.dataTransfer.types;
    return types && Array.prototype.indexOf.call(types, "Files") >= 0;
  }

  var depth = 0;
  zone.addEventListener("dragenter", function (event) {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    depth += 1;
    zone.classList.add("is-dragover");
  });
  zone.addEventListener("dragover", function (event) {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
  });
  zone.addEventListener("dragleave", function () {
    depth = Math.max(0, depth - 1);
    if (!depth) zone.classList.remove("is-dragover");
  });
  zone.addEventListener("drop", function (event) {
    event.preventDefault();
    depth = 0;
    zone.classList.remove("is-dragover");
    if (event.dataTransfer && event.dataTransfer.files.length) addFiles(event.dataTransfer.files);
  });
  // A file dropped beside the zone must not make the browser navigate away to it.
  window.addEventListener("dragover", function (event) { if (carriesFiles(event)) event.preventDefault(); });
  window.addEventListener("drop", function (event) { if (carriesFiles(event)) event.preventDefault(); });
}
