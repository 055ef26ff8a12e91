/* The gallery: a filtered, paginated grid of the workspace's images whose statuses update live
   (pending -> processing -> ready | rejected) without a reload. The parts: gallery-filters.js
   (the filters, the address, the list query), gallery-tile.js (one tile), gallery-selection.js
   and batch-bar.js (choosing images, and what is done with them at once). */

import { api } from "./api.js";
import { showError } from "./dom.js";
import { startBatchBar } from "./batch-bar.js";
import { createFilters } from "./gallery-filters.js";
import { createSelection } from "./gallery-selection.js";
import { renderTile } from "./gallery-tile.js";
import { createWatcher, isSettled } from "./poll.js";
import { errorWords } from "./words.js";
import { refreshQuota } from "./workspace.js";

function tagsKey(record) {
  return (record.tags || []).join(",");
}

/** Whether an image moved in a way its tile shows: its status or its tags. */
function tileChanged(before, after) {
  return before.status !== after.status || tagsKey(before) !== tagsKey(after);
}

/** Start the gallery; returns what the uploader tells it, and a way to hear how images end. */
export function createGallery() {
  const grid = document.getElementById("gallery");
  if (!grid) return null;
  const form = document.getElementById("filters");
  const moreButton = document.getElementById("load-more");
  const empty = document.getElementById("gallery-empty");
  const errorBox = document.getElementById("gallery-error");

  const filters = createFilters(form);
  let showSelection = () => {};
  const selection = createSelection(grid, (ids) => showSelection(ids));
  const tiles = new Map();        // image_id -> {record, node, uploading, percent, hidden}
  const listeners = [];           // told of every status change
  let nextCursor = null;
  let generation = 0;             // a newer load makes older answers stale

  const watcher = createWatcher({
    onChange: update,
    onGone: removeTile,
    onIdle: refreshQuota,         // everything settled: sizes are final
    changed: tileChanged
  });

  // ---- tiles ------------------------------------------------------------------------------

  function place(entry, prepend) {
    if (entry.hidden) return;   // followed for the uploader, but outside the current filters
    const node = renderTile(entry, selection.has(entry.record.image_id));
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
    const none = Array.from(tiles.values()).every((entry) => entry.hidden);
    empty.hidden = !none;
    if (none) {
      const filtered = filters.active();
      document.getElementById("gallery-empty-title").textContent = filtered ? "No images match these filters" : "No images yet";
      document.getElementById("gallery-empty-text").textContent = filtered
        ? "Try another tag or date range, or clear the filters to see everything."
        : "Drop a few files above to get started. They stay private to this browser.";
    }
  }

  // ---- loading ----------------------------------------------------------------------------

  /** Before a fresh first page: drop every tile but those still followed for the uploader
      (uploads under way, hidden images not yet settled). */
  function dropTilesForReload() {
    tiles.forEach((entry, id) => {
      if (entry.uploading || (entry.hidden && !isSettled(entry.record))) return;
      if (entry.node) entry.node.remove();
      tiles.delete(id);
      watcher.unwatch(id);
    });
  }

  /** One image of a listed page: show it if it was hidden, refresh it if its tile is stale,
      else give it a tile and follow it. */
  function takeListed(record) {
    const known = tiles.get(record.image_id);
    if (known && known.hidden) {   // now inside the filters
      known.hidden = false;
      known.record = record;
      place(known, false);
    } else if (known) {
      if (tileChanged(known.record, record)) update(record);
    } else {
      const entry = { record: record, node: null };
      tiles.set(record.image_id, entry);
      place(entry, false);
      watcher.watch(record);
    }
  }

  /** The first page under the filters (``reset``), or the next one after it. */
  async function load(reset) {
    const mine = reset ? ++generation : generation;
    grid.setAttribute("aria-busy", "true");
    moreButton.disabled = true;
    try {
      const page = await api("GET", filters.query(reset ? null : nextCursor));
      if (mine !== generation) return;
      if (reset) dropTilesForReload();
      page.images.forEach(takeListed);
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
    const problem = filters.problem();
    if (problem) {
      showError(errorBox, problem);
      return;
    }
    filters.toAddress();
    load(true);
  });
  form.addEventListener("reset", () => {
    setTimeout(() => { filters.toAddress(); load(true); }, 0);
  });
  moreButton.addEventListener("click", () => load(false));

  filters.fromAddress();
  load(true);

  // ---- what the uploader tells us ---------------------------------------------------------

  const gallery = {
    /** Hear every status change of a followed image. */
    onChange(listener) {
      listeners.push(listener);
    },
    /** A ticket was issued: show a pending tile at the top. A gallery load that answered
        between the ticket's creation and this call may have placed the image already: that
        tile becomes the upload's (one tile per image, whatever the order of the answers). */
    addUpload(record) {
      const known = tiles.get(record.image_id);
      const entry = known || { record: record, node: null, hidden: !filters.matches(record) };
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
  showSelection = startBatchBar(selection, gallery) || showSelection;
  return gallery;
}
