/* The detail page's convert & resize card: the form's values as a conversion request (an
   optional text watermark), the result downloaded at once. */

import { ApiError, api, startDownload } from "./api.js";
import { el } from "./dom.js";
import { errorWords, formatBytes } from "./words.js";

export function startConvert(page) {
  const { path } = page;
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
}
