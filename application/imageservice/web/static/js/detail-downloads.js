/* The detail page's download buttons: the original, or a derivative, through a short-lived
   signed URL. */

import { downloadUrl, startDownload } from "./api.js";
import { showError } from "./dom.js";
import { errorWords } from "./words.js";

export function startDownloads(page) {
  const { imageId } = page;
  var downloads = document.getElementById("downloads");
  if (downloads) {
    downloads.addEventListener("click", function (event) {
      var button = event.target.closest("button[data-variant]");
      if (!button) return;
      var downloadError = document.getElementById("download-error");
      button.disabled = true;
      downloadUrl(imageId, button.dataset.variant).then(function (url) {
        showError(downloadError, null);
        if (new URL(url, location.href).origin === location.origin || button.dataset.variant === "original") {
          startDownload(url);
        } else {
          window.open(url, "_blank", "noopener");   // another origin ignores download=: show it
        }
      }).catch(function (error) { showError(downloadError, errorWords(error)); })
        .then(function () { button.disabled = false; });
    });
  }
}
