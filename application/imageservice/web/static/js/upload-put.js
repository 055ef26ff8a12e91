/* The PUT of a file's bytes to its presigned URL, with exactly the ticket's headers (no cookies,
   no CSRF: the URL is the authorisation), reporting progress and speed as bytes move. */

import { ApiError, errorFromBody } from "./api.js";

// Speed is measured over the last two seconds of progress events.
const SPEED_WINDOW_MS = 2000;

/** PUT ``upload.file`` as ``ticket`` says; ``onProgress(loaded, total, bytesPerSecond | null)``. */
export function putToStorage(upload, ticket, onProgress) {
  return new Promise(function (resolve, reject) {
    const xhr = new XMLHttpRequest();
    const samples = [];
    upload.xhr = xhr;
    xhr.open(ticket.upload_method || "PUT", ticket.upload_url, true);
    xhr.withCredentials = false;
    Object.keys(ticket.upload_headers || {}).forEach(function (name) {
      if (/^(content-length|host)$/i.test(name)) return;   // the browser sets these itself
      xhr.setRequestHeader(name, ticket.upload_headers[name]);
    });
    xhr.upload.addEventListener("progress", function (event) {
      if (!event.lengthComputable) return;
      const now = performance.now();
      samples.push([now, event.loaded]);
      while (samples.length > 2 && now - samples[0][0] > SPEED_WINDOW_MS) samples.shift();
      const first = samples[0], seconds = (now - first[0]) / 1000;
      onProgress(event.loaded, event.total, seconds > 0.2 ? (event.loaded - first[1]) / seconds : null);
    });
    xhr.addEventListener("load", function () {
      if (xhr.status >= 200 && xhr.status < 300) { resolve(); return; }
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch (e) { body = null; }
      const error = errorFromBody(xhr.status, body);
      if (!body) error.message = "Storage refused the upload (HTTP " + xhr.status + ").";
      reject(error);
    });
    xhr.addEventListener("error", function () {
      reject(new ApiError(0, "network", "The upload was interrupted. Check your connection and try again."));
    });
    xhr.addEventListener("abort", function () {
      reject(new ApiError(0, "cancelled", "Cancelled."));
    });
    xhr.send(upload.file);
  });
}
