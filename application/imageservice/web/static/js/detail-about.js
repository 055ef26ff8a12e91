/* The detail page's tags and description, edited in place. */

import { api } from "./api.js";
import { el, showError, toast } from "./dom.js";
import { errorWords } from "./words.js";

export function startAbout(page) {
  const { path } = page;
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
    }).catch(function (error) { showError(editError, errorWords(error)); })
      .then(function () { save.disabled = false; });
  });
}
