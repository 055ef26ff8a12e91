/* The detail page's preview: a blurhash placeholder until the preview (a short-lived signed
   URL) has loaded, and a reload when a pending image settles. */

import { downloadUrl } from "./api.js";
import { paint } from "./blurhash.js";
import { toast } from "./dom.js";
import { createWatcher } from "./poll.js";
import { errorWords } from "./words.js";

export function startPreview(page) {
  const { root, imageId } = page;
  var placeholder = document.getElementById("preview-placeholder");
  var preview = document.getElementById("preview-image");
  if (preview) {
    var w = Number(preview.getAttribute("width")), h = Number(preview.getAttribute("height"));
    if (placeholder && w && h) placeholder.height = Math.max(1, Math.min(96, Math.round(32 * h / w)));
    if (placeholder && !paint(placeholder, root.dataset.blurhash)) placeholder.hidden = true;
    preview.addEventListener("load", function () {
      preview.classList.add("is-loaded");
      if (placeholder) placeholder.hidden = true;
    });
    downloadUrl(imageId, "preview").then(function (url) { preview.src = url; })
      .catch(function (error) { toast("The preview could not be loaded: " + errorWords(error), "error"); });
  }

  if (root.dataset.settled !== "true") {
    var reload = function () { location.reload(); };
    createWatcher({ onChange: reload, onGone: reload }).watch({ image_id: imageId, status: root.dataset.status });
  }
}
