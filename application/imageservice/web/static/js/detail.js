/* The image page: preview with a blurhash placeholder, live status until processed,
   in-place editing of tags and description, downloads, convert & resize, delete. */

import { ApiError, api, downloadUrl, imagePath, startDownload } from "./api.js";
import { paint } from "./blurhash.js";
import { el, leaveNotice, toast } from "./dom.js";
import { createWatcher } from "./poll.js";
import { errorWords, formatBytes } from "./words.js";

function start(root) {
  var imageId = root.dataset.imageId;
  var filename = root.dataset.filename;
  var path = imagePath(imageId);

  function showError(node, error) {
    if (!node) return;
    node.textContent = error ? errorWords(error) : "";
    node.hidden = !error;
  }

  // ---- preview ----------------------------------------------------------------------------

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

  // ---- live status until the image settles ------------------------------------------------

  if (root.dataset.settled !== "true") {
    var reload = function () { location.reload(); };
    createWatcher({ onChange: reload, onGone: reload }).watch({ image_id: imageId, status: root.dataset.status });
  }

  // ---- downloads --------------------------------------------------------------------------

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
      }).catch(function (error) { showError(downloadError, error); })
        .then(function () { button.disabled = false; });
    });
  }

  // ---- convert & resize -------------------------------------------------------------------

  var convertForm = document.getElementById("convert-form");
  if (convertForm) {
    var quality = document.getElementById("convert-quality");
    var qualityValue = document.getElementById("quality-value");
    var convertStatus = document.getElementById("convert-status");
    var submit = document.getElementById("convert-submit");
    quality.addEventListener("input", function () { qualityValue.textContent = quality.value; });
    var markText = document.getElementById("convert-watermark-text");
    var markOpacity = document.getElementById("convert-watermark-opacity");
    var markOpacityValue = document.getElementById("watermark-opacity-value");
    markOpacity.addEventListener("input", function () { markOpacityValue.textContent = markOpacity.value + "%"; });

    /** The text watermark the form asks for, or null when its text is empty. */
    var watermark = function () {
      var text = markText.value.trim();
      if (!text) return null;
      return {
        text: text,
        position: convertForm.elements.watermark_position.value,
        opacity: Number(markOpacity.value) / 100
      };
    };

    var sizeField = function (name) {
      var field = convertForm.elements[name];
      var text = field.value.trim();
      if (!text) return null;
      var value = Number(text);
      var max = Number(field.max) || 8192;
      if (!Number.isInteger(value) || value < 1 || value > max) {
        throw new ApiError(400, "invalid_parameter", "The " + name + " must be a whole number from 1 to " + max + ".");
      }
      return value;
    };

    convertForm.addEventListener("submit", function (event) {
      event.preventDefault();
      var body;
      try {
        body = {
          format: convertForm.elements.format.value,
          fit: convertForm.elements.fit.value,
          quality: Number(quality.value)
        };
        var width = sizeField("width"), height = sizeField("height");
        if (width) body.width = width;
        if (height) body.height = height;
        var mark = watermark();
        if (mark) body.watermark = mark;
      } catch (error) {
        convertStatus.textContent = errorWords(error);
        convertStatus.classList.add("is-bad");
        return;
      }
      submit.disabled = true;
      convertStatus.classList.remove("is-bad");
      convertStatus.textContent = "Converting…";
      api("POST", path + "/convert", body).then(function (result) {
        convertStatus.textContent = "";
        convertStatus.appendChild(document.createTextNode(
          "Made " + result.format.toUpperCase() + " " + result.width + " × " + result.height + ", " +
          formatBytes(result.bytes) + ". "));
        convertStatus.appendChild(el("a", { href: result.download_url, rel: "noopener", download: "", text: "Download again" }));
        startDownload(result.download_url);
      }).catch(function (error) {
        convertStatus.textContent = errorWords(error);
        convertStatus.classList.add("is-bad");
      }).then(function () { submit.disabled = false; });
    });
  }

  // ---- tags and description, edited in place ---------------------------------------------

  var editButton = document.getElementById("edit-button");
  var editForm = document.getElementById("edit-form");
  var aboutView = document.getElementById("about-view");
  var editError = document.getElementById("edit-error");

  function editing(on) {
    editForm.hidden = !on;
    aboutView.hidden = on;
    editButton.hidden = on;
    editButton.setAttribute("aria-expanded", on ? "true" : "false");
    showError(editError, null);
    if (on) document.getElementById("edit-tags").focus();
    else editButton.focus();
  }

  function renderAbout(record) {
    var tagsView = document.getElementById("tags-view");
    tagsView.textContent = "";
    record.tags.forEach(function (tag) { tagsView.appendChild(el("li", { className: "tag", text: tag })); });
    document.getElementById("description-view").textContent = record.description || "";
    document.getElementById("about-empty").hidden = Boolean(record.tags.length || record.description);
    editForm.elements.tags.value = record.tags.join(", ");
    editForm.elements.description.value = record.description || "";
  }

  editButton.addEventListener("click", function () { editing(true); });
  document.getElementById("edit-cancel").addEventListener("click", function () { editing(false); });
  editForm.addEventListener("keydown", function (event) { if (event.key === "Escape") editing(false); });
  editForm.addEventListener("submit", function (event) {
    event.preventDefault();
    var save = editForm.querySelector('button[type="submit"]');
    save.disabled = true;
    api("PATCH", path, {
      tags: editForm.elements.tags.value,
      description: editForm.elements.description.value
    }).then(function (record) {
      renderAbout(record);
      editing(false);
      toast("Saved.");
    }).catch(function (error) { showError(editError, error); })
      .then(function () { save.disabled = false; });
  });

  // ---- delete, confirmed in a dialog ------------------------------------------------------

  var dialog = document.getElementById("delete-dialog");
  var confirmButton = document.getElementById("delete-confirm");
  var deleteError = document.getElementById("delete-error");
  document.getElementById("delete-button").addEventListener("click", function () {
    showError(deleteError, null);
    dialog.showModal();
  });
  confirmButton.addEventListener("click", function () {
    confirmButton.disabled = true;
    confirmButton.textContent = "Deleting…";
    api("DELETE", path).then(function () {
      leaveNotice("Deleted " + filename + ".");
      location.assign("/");
    }).catch(function (error) {
      showError(deleteError, error);
      confirmButton.disabled = false;
      confirmButton.textContent = "Delete";
    });
  });
}

const detail = document.getElementById("detail");
if (detail) start(detail);
