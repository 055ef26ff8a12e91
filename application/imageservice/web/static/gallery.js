/* The gallery: a filtered, paginated grid of the workspace's images whose statuses update live
   (pending -> processing -> ready | rejected) without a reload. */
(function () {
  "use strict";

  var CIS = window.CIS;
  var DEFAULT_PAGE_SIZE = 24;
  var pageSize = DEFAULT_PAGE_SIZE;   // ?limit=N in the address overrides it (1-100)
  var POLL_MS = 1000;
  var REASONS = {
    not_an_image: "This file is not an image.",
    unsupported_format: "This image format is not supported.",
    too_large: "The file is larger than the upload limit.",
    too_many_pixels: "The image has more pixels than allowed.",
    too_many_frames: "The animation has too many frames.",
    corrupt: "The image is damaged and cannot be read.",
    processing_failed: "Processing failed; try uploading it again."
  };

  var grid = document.getElementById("gallery");
  if (!grid) return;
  var form = document.getElementById("filters");
  var moreButton = document.getElementById("load-more");
  var empty = document.getElementById("gallery-empty");
  var errorBox = document.getElementById("gallery-error");

  var tiles = new Map();        // image_id -> {record, node, uploading, percent}
  var nextCursor = null;
  var generation = 0;           // a newer load makes older answers stale
  var pollTimer = null;
  var quietPolls = 0;           // polls in a row that changed nothing: slow down (abandoned uploads)

  // ---- filters ----------------------------------------------------------------------------

  function localDayStart(value) {
    var parts = value.split("-").map(Number);
    return new Date(parts[0], parts[1] - 1, parts[2], 0, 0, 0, 0);
  }

  function localDayEnd(value) {
    var parts = value.split("-").map(Number);
    return new Date(parts[0], parts[1] - 1, parts[2], 23, 59, 59, 999);
  }

  function filters() {
    return {
      tag: form.elements.tag.value.trim().toLowerCase(),
      since: form.elements.since.value,
      until: form.elements.until.value,
      status: form.elements.status.value
    };
  }

  function filtering() {
    var f = filters();
    return Boolean(f.tag || f.since || f.until || f.status);
  }

  function listQuery(cursor) {
    var f = filters();
    var params = new URLSearchParams();
    if (f.tag) params.set("tag", f.tag);
    if (f.since) params.set("since", localDayStart(f.since).toISOString());
    if (f.until) params.set("until", localDayEnd(f.until).toISOString());
    if (f.status) params.set("status", f.status);
    params.set("limit", String(pageSize));
    if (cursor) params.set("cursor", cursor);
    return "/api/images?" + params.toString();
  }

  function filtersFromAddress() {
    var params = new URLSearchParams(location.search);
    ["tag", "since", "until", "status"].forEach(function (name) {
      if (params.has(name)) form.elements[name].value = params.get(name);
    });
    var limit = parseInt(params.get("limit"), 10);
    if (limit >= 1 && limit <= 100) pageSize = limit;
  }

  function filtersToAddress() {
    var f = filters();
    var params = new URLSearchParams();
    Object.keys(f).forEach(function (name) { if (f[name]) params.set(name, f[name]); });
    if (pageSize !== DEFAULT_PAGE_SIZE) params.set("limit", String(pageSize));
    var query = params.toString();
    history.replaceState(null, "", location.pathname + (query ? "?" + query : ""));
  }

  /** Would this (new) record show under the current filters? */
  function matches(record) {
    var f = filters();
    if (f.tag && (record.tags || []).indexOf(f.tag) < 0) return false;
    if (f.status && f.status !== record.status) return false;
    if (f.until && localDayEnd(f.until) < new Date()) return false;
    return true;
  }

  // ---- tiles ------------------------------------------------------------------------------

  function reasonWords(record) {
    var error = record.error || {};
    return CIS.sentence(error.message || REASONS[error.code] || "The file could not be processed.");
  }

  function metaWords(record) {
    var parts = [];
    if (record.width && record.height) parts.push(record.width + " × " + record.height);
    if (record.format) parts.push(record.format);
    if (typeof record.size === "number") parts.push(CIS.formatBytes(record.size));
    return parts.join(" · ");
  }

  function rejectIcon() {
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("class", "reject-icon");
    svg.setAttribute("aria-hidden", "true");
    var path = document.createElementNS(ns, "path");
    path.setAttribute("d", "M12 3l10 18H2L12 3zm0 6v5m0 3v.5");
    path.setAttribute("fill", "none");
    path.setAttribute("stroke", "currentColor");
    path.setAttribute("stroke-width", "2");
    path.setAttribute("stroke-linecap", "round");
    path.setAttribute("stroke-linejoin", "round");
    svg.appendChild(path);
    return svg;
  }

  function mediaFor(entry) {
    var record = entry.record;
    var el = CIS.el;
    if (record.status === "ready") {
      var ratio = record.width && record.height ? record.height / record.width : 1;
      var canvas = el("canvas", {
        width: 32, height: Math.max(1, Math.min(96, Math.round(32 * ratio))), "aria-hidden": "true"
      });
      if (record.blurhash && CIS.blurhash) CIS.blurhash.paint(canvas, record.blurhash);
      var img = el("img", { alt: "Thumbnail of " + record.filename, decoding: "async" });
      img.addEventListener("load", function () { img.classList.add("is-loaded"); });
      loadThumb(record.image_id, img);
      return el("div", { className: "tile-media" }, [canvas, img]);
    }
    if (record.status === "rejected") {
      return el("div", { className: "tile-media" }, [
        el("div", { className: "tile-state" }, [rejectIcon(), el("span", { text: "Not accepted" })])
      ]);
    }
    var words = record.status === "processing" ? "Processing…"
      : entry.uploading ? "Uploading " + (entry.percent || 0) + "%"
      : "Waiting for the upload…";
    return el("div", { className: "tile-media" }, [
      el("div", { className: "tile-state" }, [el("span", { className: "spinner", "aria-hidden": "true" }), el("span", { className: "tile-progress", text: words })])
    ]);
  }

  function loadThumb(imageId, img) {
    CIS.downloadUrl(imageId, "thumb").then(function (url) { img.src = url; })
      .catch(function () { /* the blurhash placeholder stays */ });
  }

  function renderTile(entry) {
    var record = entry.record;
    var el = CIS.el;
    var body = el("div", { className: "tile-body" }, [
      el("p", { className: "tile-title", title: record.filename, text: record.filename }),
      el("div", { className: "tile-row" }, [CIS.pill(record.status)]),
      record.status === "ready" ? el("p", { className: "tile-meta", text: metaWords(record) }) : null,
      record.status === "rejected" ? el("p", { className: "tile-reason", text: reasonWords(record) }) : null,
      (record.tags || []).length ? el("ul", { className: "tags", "aria-label": "Tags" },
        record.tags.map(function (tag) { return el("li", { className: "tag", text: tag }); })) : null
    ]);
    var tile = el("a", {
      className: "tile tile-" + record.status,
      href: "/images/" + encodeURIComponent(record.image_id),
      "aria-label": record.filename + ", " + (CIS.STATUS_WORDS[record.status] || record.status) +
        (record.status === "rejected" ? ": " + reasonWords(record) : "")
    }, [mediaFor(entry), body]);
    return el("li", { className: "grid-item", dataset: { imageId: record.image_id, status: record.status } }, [tile]);
  }

  function place(entry, prepend) {
    if (entry.hidden) return;   // followed for the uploader, but outside the current filters
    var node = renderTile(entry);
    if (entry.node && entry.node.parentNode) entry.node.replaceWith(node);
    else if (prepend) grid.insertBefore(node, grid.firstChild);
    else grid.appendChild(node);
    entry.node = node;
  }

  function settled(record) {
    return record.status === "ready" || record.status === "rejected";
  }

  function update(record) {
    var entry = tiles.get(record.image_id);
    if (!entry) return;
    var changed = entry.record.status !== record.status ||
      (entry.record.tags || []).join(",") !== (record.tags || []).join(",");
    entry.record = record;
    if (changed) {
      quietPolls = 0;
      place(entry, false);
      document.dispatchEvent(new CustomEvent("cis:image", { detail: record }));
    }
  }

  function removeTile(imageId) {
    var entry = tiles.get(imageId);
    if (!entry) return;
    if (entry.node) entry.node.remove();
    tiles.delete(imageId);
    showEmptyState();
  }

  function showEmptyState() {
    var none = true;
    tiles.forEach(function (entry) { if (!entry.hidden) none = false; });
    empty.hidden = !none;
    if (none) {
      var filtered = filtering();
      document.getElementById("gallery-empty-title").textContent = filtered ? "No images match these filters" : "No images yet";
      document.getElementById("gallery-empty-text").textContent = filtered
        ? "Try another tag or date range, or clear the filters to see everything."
        : "Drop a few files above to get started. They stay private to this browser.";
    }
  }

  // ---- loading and live status ------------------------------------------------------------

  function showError(error) {
    errorBox.textContent = error ? CIS.errorWords(error) : "";
    errorBox.hidden = !error;
  }

  function load(reset) {
    var mine = reset ? ++generation : generation;
    grid.setAttribute("aria-busy", "true");
    moreButton.disabled = true;
    return CIS.api("GET", listQuery(reset ? null : nextCursor)).then(function (page) {
      if (mine !== generation) return;
      if (reset) {
        tiles.forEach(function (entry, id) {
          if (entry.uploading || (entry.hidden && !settled(entry.record))) return;   // still followed
          if (entry.node) entry.node.remove();
          tiles.delete(id);
        });
      }
      page.images.forEach(function (record) {
        var known = tiles.get(record.image_id);
        if (known && known.hidden) {   // now inside the filters: show it
          known.hidden = false;
          known.record = record;
          place(known, false);
          return;
        }
        if (known) { update(record); return; }
        var entry = { record: record, node: null };
        tiles.set(record.image_id, entry);
        place(entry, false);
      });
      nextCursor = page.next_cursor;
      moreButton.hidden = !nextCursor;
      showError(null);
      showEmptyState();
      schedulePoll();
    }).catch(function (error) {
      if (mine === generation) showError(error);
    }).then(function () {
      grid.setAttribute("aria-busy", "false");
      moreButton.disabled = false;
    });
  }

  function schedulePoll() {
    if (pollTimer) return;
    var waiting = false;
    tiles.forEach(function (entry) { if (!entry.uploading && !settled(entry.record)) waiting = true; });
    if (waiting) pollTimer = setTimeout(poll, quietPolls < 60 ? POLL_MS : 5 * POLL_MS);
  }

  function poll() {
    pollTimer = null;
    var ids = [];
    quietPolls += 1;
    tiles.forEach(function (entry, id) { if (!entry.uploading && !settled(entry.record)) ids.push(id); });
    Promise.all(ids.map(function (id) {
      return CIS.api("GET", CIS.imagePath(id)).then(update).catch(function (error) {
        if (error instanceof CIS.ApiError && error.status === 404) removeTile(id);
      });
    })).then(function () {
      var before = ids.length;
      schedulePoll();
      if (before && !pollTimer) CIS.refreshQuota();   // everything settled: sizes are final
    });
  }

  // ---- what the uploader tells us ---------------------------------------------------------

  CIS.gallery = {
    /** A ticket was issued: show a pending tile at the top. */
    addUpload: function (record) {
      var entry = { record: record, node: null, uploading: true, percent: 0, hidden: !matches(record) };
      tiles.set(record.image_id, entry);
      place(entry, true);
      showEmptyState();
    },
    progress: function (imageId, percent) {
      var entry = tiles.get(imageId);
      if (!entry || !entry.node) return;
      entry.percent = percent;
      var label = entry.node.querySelector(".tile-progress");
      if (label) label.textContent = "Uploading " + percent + "%";
    },
    /** The bytes are stored: follow the image until it settles. */
    uploaded: function (imageId) {
      var entry = tiles.get(imageId);
      if (entry) {
        entry.uploading = false;
        place(entry, false);
      }
      quietPolls = 0;
      schedulePoll();
      CIS.refreshQuota();
    },
    remove: function (imageId) {
      removeTile(imageId);
      CIS.refreshQuota();
    }
  };

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var f = filters();
    if (f.since && f.until && f.since > f.until) {
      showError(new CIS.ApiError(400, "invalid_dates", "The From date is after the To date."));
      return;
    }
    filtersToAddress();
    load(true);
  });
  form.addEventListener("reset", function () {
    setTimeout(function () { filtersToAddress(); load(true); }, 0);
  });
  moreButton.addEventListener("click", function () { load(false); });

  filtersFromAddress();
  load(true);
})();
