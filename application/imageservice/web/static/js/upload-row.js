/* One row of the upload list per file: its name, state pill, amount, speed, progress, message,
   and Cancel / Dismiss. */

import { el } from "./dom.js";
import { formatBytes, formatSpeed } from "./words.js";

const FINISHED = ["cancelled", "refused", "failed", "ready", "rejected"];

/** A new row for ``file`` at the end of ``list``. */
export function makeRow(list, file) {
  const row = {
    pill: el("span", { className: "pill pill-pending", text: "Waiting" }),
    amount: el("span", { className: "upload-amount", text: formatBytes(file.size) }),
    speed: el("span", { className: "upload-speed" }),
    progress: el("progress", { max: "100", value: "0", "aria-label": "Upload of " + file.name }),
    message: el("p", { className: "upload-message" }),
    cancel: el("button", { type: "button", className: "button small", text: "Cancel", "aria-label": "Cancel upload of " + file.name }),
    dismiss: el("button", { type: "button", className: "button subtle small", text: "Dismiss", "aria-label": "Dismiss " + file.name, hidden: true })
  };
  row.node = el("li", { className: "upload-item" }, [
    el("div", { className: "upload-head" }, [
      el("div", { className: "upload-name", title: file.name, text: file.name }),
      el("div", { className: "upload-meta" }, [row.pill, row.amount, row.speed])
    ]),
    el("div", { className: "upload-actions" }, [row.cancel, row.dismiss]),
    row.progress,
    row.message
  ]);
  row.dismiss.addEventListener("click", function () { row.node.remove(); });
  list.appendChild(row.node);
  return row;
}

/** Show an upload's ``state`` (its pill says ``words``; ``bad`` marks a failure). */
export function setState(upload, state, words, message, bad) {
  const row = upload.row;
  upload.state = state;
  row.pill.className = "pill pill-" + state;
  row.pill.textContent = words;
  row.message.textContent = message || "";
  row.message.hidden = !message;
  row.node.classList.toggle("is-bad", Boolean(bad));
  const finished = FINISHED.indexOf(state) >= 0;
  row.cancel.hidden = finished || state === "finishing" || state === "uploaded";
  row.dismiss.hidden = !finished;
  if (finished || state === "uploaded" || state === "finishing") row.speed.textContent = "";
  if (state !== "uploading") row.progress.hidden = state !== "finishing" && state !== "uploaded";
}

/** Bytes sent so far, in the row: percent, amount and speed. */
export function showProgress(row, loaded, total, bytesPerSecond) {
  const percent = Math.floor(loaded / total * 100);
  row.pill.textContent = "Uploading " + percent + "%";
  row.progress.value = percent;
  row.amount.textContent = formatBytes(loaded) + " of " + formatBytes(total);
  if (bytesPerSecond !== null) row.speed.textContent = formatSpeed(bytesPerSecond);
  return percent;
}
