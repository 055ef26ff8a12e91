/* One gallery tile: the thumbnail over its blurhash placeholder (or upload progress, or why the
   file was not accepted), the name, status, Shared badge, size and tags. */

import { downloadUrl } from "./api.js";
import { paint } from "./blurhash.js";
import { el, pill } from "./dom.js";
import { formatBytes, isQuarantined, rejectionWords, statusWords } from "./words.js";

function metaWords(record) {
  const parts = [];
  if (record.width && record.height) parts.push(record.width + " × " + record.height);
  if (record.format) parts.push(record.format);
  if (typeof record.size === "number") parts.push(formatBytes(record.size));
  return parts.join(" · ");
}

/** "Shared" while a share link of the image is live (the record says until when). */
function sharedBadge(record) {
  if (!record.shared_until || Date.parse(record.shared_until) <= Date.now()) return null;
  return el("span", { className: "badge badge-shared", title: "A share link is live", text: "Shared" });
}

function rejectIcon() {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("class", "reject-icon");
  svg.setAttribute("aria-hidden", "true");
  const path = document.createElementNS(ns, "path");
  path.setAttribute("d", "M12 3l10 18H2L12 3zm0 6v5m0 3v.5");
  path.setAttribute("fill", "none");
  path.setAttribute("stroke", "currentColor");
  path.setAttribute("stroke-width", "2");
  path.setAttribute("stroke-linecap", "round");
  path.setAttribute("stroke-linejoin", "round");
  svg.appendChild(path);
  return svg;
}

function loadThumb(imageId, img) {
  downloadUrl(imageId, "thumb").then((url) => { img.src = url; })
    .catch(() => { /* the blurhash placeholder stays */ });
}

function mediaFor(entry) {
  const record = entry.record;
  if (record.status === "ready") {
    const ratio = record.width && record.height ? record.height / record.width : 1;
    const canvas = el("canvas", {
      width: 32, height: Math.max(1, Math.min(96, Math.round(32 * ratio))), "aria-hidden": "true"
    });
    if (record.blurhash) paint(canvas, record.blurhash);
    const img = el("img", { alt: "Thumbnail of " + record.filename, decoding: "async" });
    img.addEventListener("load", () => img.classList.add("is-loaded"));
    loadThumb(record.image_id, img);
    return el("div", { className: "tile-media" }, [canvas, img]);
  }
  if (record.status === "rejected") {
    return el("div", { className: "tile-media" }, [
      el("div", { className: "tile-state" }, [rejectIcon(), el("span", { text: isQuarantined(record) ? "Quarantined" : "Not accepted" })])
    ]);
  }
  const words = record.status === "processing" ? "Processing…"
    : entry.uploading ? "Uploading " + (entry.percent || 0) + "%"
    : "Waiting for the upload…";
  return el("div", { className: "tile-media" }, [
    el("div", { className: "tile-state" }, [el("span", { className: "spinner", "aria-hidden": "true" }), el("span", { className: "tile-progress", text: words })])
  ]);
}

/** The grid item of one followed image: its media (thumbnail, progress or why it was not
    accepted), name, status, shared badge, size and tags, linking to its page. */
export function renderTile(entry, selected) {
  const record = entry.record;
  const rejected = record.status === "rejected";
  const body = el("div", { className: "tile-body" }, [
    el("p", { className: "tile-title", title: record.filename, text: record.filename }),
    el("div", { className: "tile-row" }, [pill(record.status), sharedBadge(record)]),
    record.status === "ready" ? el("p", { className: "tile-meta", text: metaWords(record) }) : null,
    rejected ? el("p", { className: "tile-reason", text: rejectionWords(record.error) }) : null,
    (record.tags || []).length ? el("ul", { className: "tags", "aria-label": "Tags" },
      record.tags.map((tag) => el("li", { className: "tag", text: tag }))) : null
  ]);
  const tile = el("a", {
    className: "tile tile-" + record.status + (isQuarantined(record) ? " tile-quarantined" : ""),
    href: "/images/" + encodeURIComponent(record.image_id),
    "aria-label": record.filename + ", " + statusWords(record.status) + (rejected ? ": " + rejectionWords(record.error) : "")
  }, [mediaFor(entry), body]);
  const box = el("input", { type: "checkbox", className: "tile-select", value: record.image_id,
                            "aria-label": "Select " + record.filename });
  box.checked = selected;
  return el("li", { className: "grid-item" + (selected ? " is-selected" : ""),
                    dataset: { imageId: record.image_id, status: record.status } }, [box, tile]);
}
