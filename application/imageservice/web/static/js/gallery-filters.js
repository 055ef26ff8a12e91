/* The gallery's filters (tag, dates, status) and page size: read from the form, kept in the
   address, turned into the list query, and asked whether a new image belongs on the page. */

import { config } from "./config.js";
import { normaliseTag } from "./tags.js";

const PAGE_SIZE_MAX = config.page_size_max;   // the API refuses a longer page
const DEFAULT_PAGE_SIZE = Math.min(24, PAGE_SIZE_MAX);
const FILTER_NAMES = ["tag", "since", "until", "status"];

function localDayStart(value) {
  const [y, m, d] = value.split("-").map(Number);
  return new Date(y, m - 1, d, 0, 0, 0, 0);
}

function localDayEnd(value) {
  const [y, m, d] = value.split("-").map(Number);
  return new Date(y, m - 1, d, 23, 59, 59, 999);
}

/** The filters of ``form``; ?limit=N in the address sets the page size (1 to PAGE_SIZE_MAX). */
export function createFilters(form) {
  let pageSize = DEFAULT_PAGE_SIZE;

  function values() {
    return {
      tag: normaliseTag(form.elements.tag.value),
      since: form.elements.since.value,
      until: form.elements.until.value,
      status: form.elements.status.value
    };
  }

  return {
    values,

    /** Why these filters cannot be asked for, in words; null when they can. */
    problem() {
      const f = values();
      return f.since && f.until && f.since > f.until ? "The From date is after the To date." : null;
    },

    /** Whether any filter is set (the empty state says so). */
    active() {
      const f = values();
      return Boolean(f.tag || f.since || f.until || f.status);
    },

    /** The list call of one page, after ``cursor`` (null: the first). */
    query(cursor) {
      const f = values();
      const params = new URLSearchParams();
      if (f.tag) params.set("tag", f.tag);
      if (f.since) params.set("since", localDayStart(f.since).toISOString());
      if (f.until) params.set("until", localDayEnd(f.until).toISOString());
      if (f.status) params.set("status", f.status);
      params.set("limit", String(pageSize));
      if (cursor) params.set("cursor", cursor);
      return "/api/images?" + params.toString();
    },

    fromAddress() {
      const params = new URLSearchParams(location.search);
      FILTER_NAMES.forEach((name) => {
        if (params.has(name)) form.elements[name].value = params.get(name);
      });
      const limit = parseInt(params.get("limit"), 10);
      if (limit >= 1 && limit <= PAGE_SIZE_MAX) pageSize = limit;
    },

    toAddress() {
      const f = values();
      const params = new URLSearchParams();
      FILTER_NAMES.forEach((name) => { if (f[name]) params.set(name, f[name]); });
      if (pageSize !== DEFAULT_PAGE_SIZE) params.set("limit", String(pageSize));
      const query = params.toString();
      history.replaceState(null, "", location.pathname + (query ? "?" + query : ""));
    },

    /** Would this (new) record show under the current filters? */
    matches(record) {
      const f = values();
      if (f.tag && (record.tags || []).indexOf(f.tag) < 0) return false;
      if (f.status && f.status !== record.status) return false;
      if (f.until && localDayEnd(f.until) < new Date()) return false;
      return true;
    }
  };
}
