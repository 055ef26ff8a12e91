/* Uploads straight to storage: ask the API for a ticket, PUT the bytes to its upload_url with
   exactly its upload_headers (S3 or the local blob endpoint, maybe another origin), tell the API
   it is complete. At most PARALLEL at once; one row per file with progress, speed and Cancel.
   The parts: upload-checks.js (what may go), upload-queue.js (whose turn), upload-row.js (the
   row), upload-put.js (the PUT), upload-dropzone.js (choosing and dropping). */

import { api, imagePath } from "./api.js";
import { toast } from "./dom.js";
import { declaredType, refusal } from "./upload-checks.js";
import { startDropzone } from "./upload-dropzone.js";
import { putToStorage } from "./upload-put.js";
import { createQueue } from "./upload-queue.js";
import { makeRow, setState, showProgress } from "./upload-row.js";
import { errorWords, rejectionWords } from "./words.js";
import { currentLimits } from "./workspace.js";

const PARALLEL = 3;

/** Start the uploader; ``gallery`` (may be null) shows the new images and says how they end. */
export function createUploader(gallery) {
  const zone = document.getElementById("dropzone");
  if (!zone) return;
  const list = document.getElementById("upload-list");
  const tagsInput = document.getElementById("upload-tags");
  const descriptionInput = document.getElementById("upload-description");
  const queue = createQueue(PARALLEL, send);
  const byImage = new Map();   // image_id -> upload, to report how processing ended

  function maxUploadBytes() {
    return currentLimits().max_upload_bytes || Number(zone.dataset.maxUploadBytes) || Infinity;
  }

  /** A row for each file; those that may go join the queue, the others say why not. */
  function addFiles(files) {
    const accepted = [];
    Array.prototype.forEach.call(files, function (file) {
      const upload = { file: file, row: makeRow(list, file), state: "queued", imageId: null, xhr: null };
      upload.row.cancel.addEventListener("click", function () { cancel(upload); });
      const reason = refusal(file, maxUploadBytes());
      if (reason) {
        setState(upload, "refused", "Not sent", reason, true);
        return;
      }
      setState(upload, "queued", "Waiting", "");
      upload.row.progress.hidden = true;
      accepted.push(upload);
    });
    queue.add(accepted);
  }

  /** Ticket, PUT, complete; the gallery shows the new image from the ticket on. */
  async function send(upload) {
    showStarting(upload);
    try {
      const ticket = await askTicket(upload);
      if (upload.state === "cancelled") { forget(upload); return; }
      showPending(upload, ticket);
      await putBytes(upload, ticket);
      await complete(upload, ticket);
      showUploaded(upload, ticket);
    } catch (error) {
      if (upload.state === "cancelled") return;
      setState(upload, "failed", "Failed", errorWords(error), true);
      if (upload.imageId) forget(upload);
    }
  }

  function showStarting(upload) {
    setState(upload, "uploading", "Starting", "");
    upload.row.progress.hidden = false;
    upload.row.progress.removeAttribute("value");   // indeterminate until bytes move
  }

  /** The API's ticket for the file: its image id and where and how to PUT the bytes. */
  async function askTicket(upload) {
    const file = upload.file;
    const ticket = await api("POST", "/api/images/upload", {
      content_type: declaredType(file), size: file.size, filename: file.name,
      tags: tagsInput.value, description: descriptionInput.value
    });
    upload.imageId = ticket.image_id;
    byImage.set(ticket.image_id, upload);
    return ticket;
  }

  /** A pending tile in the gallery, with the tags as the server stored them. */
  function showPending(upload, ticket) {
    const file = upload.file;
    gallery && gallery.addUpload({
      image_id: ticket.image_id, status: "pending", filename: file.name, size: file.size,
      tags: ticket.tags || [], created_at: new Date().toISOString()
    });
    upload.row.progress.value = 0;
  }

  /** The bytes to storage, their progress in the row and on the tile. */
  function putBytes(upload, ticket) {
    return putToStorage(upload, ticket, function (loaded, total, speed) {
      if (upload.state !== "uploading") return;
      const percent = showProgress(upload.row, loaded, total, speed);
      gallery && gallery.progress(ticket.image_id, percent);
    });
  }

  /** Tell the API the bytes are there. */
  function complete(upload, ticket) {
    setState(upload, "finishing", "Finishing", "");
    return api("POST", imagePath(ticket.image_id) + "/complete").catch(function () {
      // Storage events start processing too (aws mode); the gallery follows the status anyway.
      return null;
    });
  }

  function showUploaded(upload, ticket) {
    setState(upload, "uploaded", "Uploaded", "Checking the image…");
    upload.row.progress.value = 100;
    gallery && gallery.uploaded(ticket.image_id);
  }

  function cancel(upload) {
    if (["queued", "uploading"].indexOf(upload.state) < 0) return;
    const wasSending = upload.xhr;
    setState(upload, "cancelled", "Cancelled", "The upload was cancelled; nothing was kept.", false);
    upload.row.progress.hidden = true;
    if (wasSending) wasSending.abort();
    if (upload.imageId) forget(upload);
    toast("Cancelled " + upload.file.name + ".");
  }

  /** Drop the record of an upload that will never arrive, so it does not linger as pending. */
  function forget(upload) {
    const id = upload.imageId;
    gallery && gallery.remove(id);
    api("DELETE", imagePath(id)).catch(function () { /* swept later */ })
      .then(function () { gallery && gallery.remove(id); });
  }

  /** How processing ended, told by the gallery's live status. */
  function followProcessing(record) {
    const upload = byImage.get(record.image_id);
    if (!upload || upload.state !== "uploaded") return;
    if (record.status === "ready") {
      setState(upload, "ready", "Ready", "");
      upload.row.progress.hidden = true;
    } else if (record.status === "rejected") {
      setState(upload, "rejected", "Rejected", rejectionWords(record.error), true);
      upload.row.progress.hidden = true;
    } else if (record.status === "processing") {
      upload.row.message.textContent = "Processing…";
    }
  }

  if (gallery) gallery.onChange(followProcessing);
  startDropzone(zone, document.getElementById("file-input"), document.getElementById("choose-files"), addFiles);
}
