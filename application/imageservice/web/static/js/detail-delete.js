/* The detail page's delete button, confirmed in a dialog. */

import { api } from "./api.js";
import { leaveNotice, showError } from "./dom.js";
import { errorWords } from "./words.js";

export function startDelete(page) {
  const { path, filename } = page;
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
      showError(deleteError, errorWords(error));
      confirmButton.disabled = false;
      confirmButton.textContent = "Delete";
    });
  });
}
