/* The gallery: a filtered, paginated grid of the workspace's images whose statuses update live
   (pending -> processing -> ready | rejected) without a reload. */

import { ApiError, api, downloadUrl } from "./api.js";
import { paint } from "./blurhash.js";
import { el, pill, showError } from "./dom.js";
import { createWatcher, isSettled } from "./poll.js";
import { errorWords, formatBytes, isQuarantined, rejectionWords, statusWords } from "./words.js";
import { refreshQuota } from "./workspace.js";

const DEFAULT_PAGE_SIZE = 24;
const FILTER_NAMES = ["tag", "since", "until", "status"];

function localDayStart(value) {
  const [y, m, d] = value.split("-").map(Number);
  return new Date(y, m - 1, d, 0, 0, 0, 0);
}

function localDayEnd(value) {
  const [y, m, d] = value.split("-").map(Number);
  return new Date(y, m - 1, d, 23, 59, 59, 999);
}

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

function tagsKey(record) {
  return (record.tags || []).join(",");
}

/** Start the gallery; returns what the uploader tells it, and a way to hear how images end. */
export function createGallery() {
  const grid = document.getElementById("gallery");
  if (!grid) return null;
  const form = document.getElementById("filters");
  const moreButton = document.getElementById("load-more");
  const empty = document.getElementById("gallery-empty");
  const errorBox = document.getElementById("gallery-error");

  const tiles = new Map();        // image_id -> {record, node, uploading, percent, hidden}
  const listeners = [];           // told of every status change
  let pageSize = DEFAULT_PAGE_SIZE;   // ?limit=N in the address overrides it (1-100)
  let nextCursor = null;
  let generation = 0;             // a newer load makes older answers stale

  const watcher = createWatcher({
    onChange: update,
    onGone: removeTile,
    onIdle: refreshQuota,         // everything settled: sizes are final
    changed: (before, after) => before.status !== after.status || tagsKey(before) !== tagsKey(after)
  });

  // ---- filters ----------------------------------------------------------------------------

  function filters() {
    return {
      tag: form.elements.tag.value.trim().toLowerCase(),
      since: form.elements.since.value,
      until: form.elements.until.value,
      status: form.elements.status.value
    };
  }

  function filtering() {
    const f = filters();
    return Boolean(f.tag || f.since || f.until || f.status);
  }

  function listQuery(cursor) {
    const f = filters();
    const params = new URLSearchParams();
    if (f.tag) params.set("tag", f.tag);
    if (f.since) params.set("since", localDayStart(f.since).toISOString());
    if (f.until) params.set("until", localDayEnd(f.until).toISOString());
    if (f.status) params.set("status", f.status);
    params.set("limit", String(pageSize));
    if (cursor) params.set("cursor", cursor);
    return "/api/images?" + params.toString();
  }

  function filtersFromAddress() {
    const params = new URLSearchParams(location.search);
    FILTER_NAMES.forEach((name) => {
      if (params.has(name)) form.elements[name].value = params.get(name);
    });
    const limit = parseInt(params.get("limit"), 10);
    if (limit >= 1 && limit <= 100) pageSize = limit;
  }

  function filtersToAddress() {
    const f = filters();
    const params = new URLSearchParams();
    FILTER_NAMES.forEach((name) => { if (f[name]) params.set(name, f[name]); });
    if (pageSize !== DEFAULT_PAGE_SIZE) params.set("limit", String(pageSize));
    const query = params.toString();
    history.replaceState(null, "", location.pathname + (query ? "?" + query : ""));
  }

  /** Would this (new) record show under the current filters? */
  function matches(record) {
    const f = filters();
    if (f.tag && (record.tags || []).indexOf(f.tag) < 0) return false;
    if (f.status && f.status !== record.status) return false;
    if (f.until && localDayEnd(f.until) < new Date()) return false;
    return true;
  }

  // ---- tiles ------------------------------------------------------------------------------

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

  function renderTile(entry) {
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
    return el("li", { className: "grid-item", dataset: { imageId: record.image_id, status: record.status } }, [tile]);
  }

  function place(entry, prepend) {
    if (entry.hidden) return;   // followed for the uploader, but outside the current filters
    const node = renderTile(entry);
    if (entry.node && entry.node.parentNode) entry.node.replaceWith(node);
    else if (prepend) grid.insertBefore(node, grid.firstChild);
    else grid.appendChild(node);
    entry.node = node;
  }

  function update(record) {
    const entry = tiles.get(record.image_id);
    if (!entry) return;
    entry.record = record;
    place(entry, false);
    listeners.forEach((listener) => listener(record));
  }

  function removeTile(imageId) {
    const entry = tiles.get(imageId);
    watcher.unwatch(imageId);
    if (!entry) return;
    if (entry.node) entry.node.remove();
    tiles.delete(imageId);
    showEmptyState();
  }

  function showEmptyState() {
    let none = true;
    tiles.forEach((entry) => { if (!entry.hidden) none = false; });
    empty.hidden = !none;
    if (none) {
      const filtered = filtering();
      document.getElementById("gallery-empty-title").textContent = filtered ? "No images match these filters" : "No images yet";
      document.getElementById("gallery-empty-text").textContent = filtered
        ? "Try another tag or date range, or clear the filters to see everything."
        : "Drop a few files above to get started. They stay private to this browser.";
    }
  }

  // ---- loading ----------------------------------------------------------------------------

  async function load(reset) {
    const mine = reset ? ++generation : generation;
    grid.setAttribute("aria-busy", "true");
    moreButton.disabled = true;
    try {
      const page = await api("GET", listQuery(reset ? null : nextCursor));
      if (mine !== generation) return;
      if (reset) {
        tiles.forEach((entry, id) => {
          if (entry.uploading || (entry.hidden && !isSettled(entry.record))) return;   // still followed
          if (entry.node) entry.node.remove();
          tiles.delete(id);
          watcher.unwatch(id);
        });
      }
      page.images.forEach((record) => {
        const known = tiles.get(record.image_id);
        if (known && known.hidden) {   // now inside the filters: show it
          known.hidden = false;
          known.record = record;
          place(known, false);
          return;
        }
        if (known) {
          if (known.record.status !== record.status || tagsKey(known.record) !== tagsKey(record)) update(record);
          return;
        }
        const entry = { record: record, node: null };
        tiles.set(record.image_id, entry);
        place(entry, false);
        watcher.watch(record);
      });
      nextCursor = page.next_cursor;
      moreButton.hidden = !nextCursor;
      showError(errorBox, null);
      showEmptyState();
    } catch (error) {
      if (mine === generation) showError(errorBox, errorWords(error));
    } finally {
      grid.setAttribute("aria-busy", "false");
      moreButton.disabled = false;
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const f = filters();
    if (f.since && f.until && f.since > f.until) {
      showError(errorBox, errorWords(new ApiError(400, "invalid_dates", "The From date is after the To date.")));
      return;
    }
    filtersToAddress();
    load(true);
  });
  form.addEventListener("reset", () => {
    setTimeout(() => { filtersToAddress(); load(true); }, 0);
  });
  moreButton.addEventListener("click", () => load(false));

  filtersFromAddress();
  load(true);

  // ---- what the uploader tells us ---------------------------------------------------------

  return {
    /** Hear every status change of a followed image. */
    onChange(listener) {
      listeners.push(listener);
    },
    /** A ticket was issued: show a pending tile at the top. A gallery load that answered
        between the ticket's creation and this call may have placed the image already: that
        tile becomes the upload's (one tile per image, whatever the order of the answers). */
    addUpload(record) {
      const known = tiles.get(record.image_id);
      const entry = known || { record: record, node: null, hidden: !matches(record) };
      entry.uploading = true;
      entry.percent = 0;
      tiles.set(record.image_id, entry);
      place(entry, !known);
      showEmptyState();
    },
    progress(imageId, percent) {
      const entry = tiles.get(imageId);
      if (!entry || !entry.node) return;
      entry.percent = percent;
      const label = entry.node.querySelector(".tile-progress");
      if (label) label.textContent = "Uploading " + percent + "%";
    },
    /** The bytes are stored: follow the image until it settles. */
    uploaded(imageId) {
      const entry = tiles.get(imageId);
      if (entry) {
        entry.uploading = false;
        place(entry, false);
        watcher.watch(entry.record, true);
      }
      refreshQuota();
    },
    remove(imageId) {
      removeTile(imageId);
      refreshQuota();
    }
  };
}
