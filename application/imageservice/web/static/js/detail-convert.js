/* The detail page's convert & resize card: the form's values as a conversion request (an
   optional text watermark), the result downloaded at once. */

import { api, startDownload } from "./api.js";
import { conversionBody, startConvertFields } from "./convert-form.js";
import { el } from "./dom.js";
import { errorWords, formatBytes } from "./words.js";

export function startConvert(page) {
  const { path } = page;
  const convertForm = document.getElementById("convert-form");
  if (!convertForm) return;
  const convertStatus = document.getElementById("convert-status");
  const submit = document.getElementById("convert-submit");
  startConvertFields(convertForm, "convert");

  convertForm.addEventListener("submit", function (event) {
    event.preventDefault();
    let body;
    try {
      body = conversionBody(convertForm);
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
