/* The gallery's batch actions on the selected images: a ZIP of the originals, a conversion of
   each packed as a ZIP, or a bulk delete; a progress bar while a batch runs, and the browser
   downloads the ZIP when it is ready (docs/DESIGN.md "Batches"). */

import { api, startDownload } from "./api.js";
import { conversionBody, startConvertFields } from "./convert-form.js";
import { showError, toast } from "./dom.js";
import { errorWords } from "./words.js";

const POLL_MS = 700;

function plural(n) {
  return n === 1 ? "1 image" : n + " images";
}

/** Wire the bar to ``selection`` and ``gallery`` (which drops deleted images). */
export function startBatchBar(selection, gallery) {
  const bar = document.getElementById("selection-bar");
  if (!bar) return null;
  const count = document.getElementById("selection-count");
  const progress = document.getElementById("batch-progress");
  const progressText = document.getElementById("batch-progress-text");
  const progressBar = document.getElementById("batch-progress-bar");
  const convertDialog = document.getElementById("batch-convert-dialog");
  const convertForm = document.getElementById("batch-convert-form");
  const convertError = document.getElementById("batch-convert-error");
  const deleteDialog = document.getElementById("batch-delete-dialog");
  let running = null;   // the batch being followed

  startConvertFields(convertForm, "batch-convert");

  function showSelection(ids) {
    bar.hidden = ids.length === 0;
    count.textContent = plural(ids.length) + " selected";
  }

  function follow(batch) {
    running = batch.batch_id;
    progress.hidden = false;
    const tick = () => {
      if (running !== batch.batch_id) return;
      api("GET", "/api/batches/" + encodeURIComponent(batch.batch_id)).then(function (state) {
        progressBar.value = state.total ? Math.round(state.done / state.total * 100) : 0;
        progressText.textContent = (state.status === "queued" ? "Waiting to start… " : "Packing… ") +
          state.done + " of " + state.total;
        if (state.status === "ready") {
          progressBar.value = 100;
          const packed = state.items.filter((item) => item.status === "done").length;
          const left = state.total - packed;
          progressText.textContent = "Ready: " + plural(packed) + " in the ZIP" +
            (left ? " (" + plural(left) + " left out)." : ".");
          running = null;
          startDownload(state.download_url);
        } else if (state.status === "failed" || state.status === "cancelled") {
          const reason = state.items.map((item) => item.error && item.error.message).find(Boolean);
          progressText.textContent = state.status === "failed" ? "The batch failed" + (reason ? ": " + reason : ".")
            : "Cancelled.";
          running = null;
        } else {
          setTimeout(tick, POLL_MS);
        }
      }).catch(function (error) {
        progressText.textContent = errorWords(error);
        running = null;
      });
    };
    tick();
  }

  function start(body) {
    progressText.textContent = "Starting…";
    progressBar.value = 0;
    progress.hidden = false;
    return api("POST", "/api/batches", body).then(follow).catch(function (error) {
      progressText.textContent = errorWords(error);
    });
  }

  document.getElementById("select-all").addEventListener("click", () => selection.selectAllShown());
  document.getElementById("select-none").addEventListener("click", () => selection.clear());
  document.getElementById("batch-zip").addEventListener("click", function () {
    start({ action: "zip", image_ids: selection.ids() });
  });
  document.getElementById("batch-convert").addEventListener("click", function () {
    showError(convertError, null);
    convertDialog.showModal();
  });
  document.getElementById("batch-convert-cancel").addEventListener("click", () => convertDialog.close());
  convertForm.addEventListener("submit", function (event) {
    event.preventDefault();
    let convert;
    try {
      convert = conversionBody(convertForm);
    } catch (error) {
      showError(convertError, errorWords(error));
      return;
    }
    convertDialog.close();
    start({ action: "convert", image_ids: selection.ids(), convert: convert });
  });
  document.getElementById("batch-cancel").addEventListener("click", function () {
    if (!running) { progress.hidden = true; return; }
    const id = running;
    running = null;
    api("DELETE", "/api/batches/" + encodeURIComponent(id)).then(() => { progressText.textContent = "Cancelled."; })
      .catch((error) => { progressText.textContent = errorWords(error); });
  });
  document.getElementById("batch-delete").addEventListener("click", function () {
    document.getElementById("batch-delete-text").textContent =
      plural(selection.ids().length) + " and everything made from them will be removed. This cannot be undone.";
    deleteDialog.showModal();
  });
  document.getElementById("batch-delete-confirm").addEventListener("click", function () {
    const ids = selection.ids();
    deleteDialog.close();
    api("POST", "/api/images/delete", { image_ids: ids }).then(function (answer) {
      answer.deleted.forEach((id) => gallery.remove(id));
      selection.drop(answer.deleted);
      toast("Deleted " + plural(answer.deleted.length) + ".");
    }).catch((error) => toast(errorWords(error), "error"));
  });

  return showSelection;
}
