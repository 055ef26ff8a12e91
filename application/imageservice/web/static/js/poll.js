/* The one polling policy: every page follows its pending/processing images through this module.

   A watcher asks GET /api/images/{id} for each image it follows, all in one round. After a
   round where nothing changed it waits longer (x BACKOFF up to MAX_DELAY_MS), so an abandoned
   upload does not keep a tab busy; a change never lets the wait grow past FIRST_DELAY_MS. It
   stops when nothing is left to follow and pauses while the tab is hidden.

   Fast, then backing off: an image whose bytes this page just sent is asked about after
   JUST_UPLOADED_DELAY_MS, then x BACKOFF. Each round then comes at most 30 % after the moment
   its answer changed, so the page learns of `ready` at most ~0.3 x the processing time late (a
   12 MP photo: ready ~170 ms after its upload, seen at the 230 ms round), for 3 or 4 requests
   per image. A server-sent event stream was the other way (docs/READY.md says why not). */

import { ApiError, api, imagePath } from "./api.js";

export const POLICY = Object.freeze({ FIRST_DELAY_MS: 1000, BACKOFF: 1.3, MAX_DELAY_MS: 10000, JUST_UPLOADED_DELAY_MS: 100 });

export function isSettled(record) {
  return record.status === "ready" || record.status === "rejected";
}

/** The wait before the next round, given the last wait and whether that round changed anything. */
export function nextDelay(previous, changed) {
  if (!previous) return POLICY.FIRST_DELAY_MS;
  if (changed) return Math.min(previous, POLICY.FIRST_DELAY_MS);   // moving: keep a fast pace fast
  return Math.min(POLICY.MAX_DELAY_MS, Math.round(previous * POLICY.BACKOFF));
}

/**
 * Follow images until they settle.
 *   onChange(record)  its status (or anything else the caller compares) moved
 *   onGone(imageId)   it no longer exists (404)
 *   onIdle()          the last followed image settled
 *   changed(before, after) what counts as a change (default: the status)
 */
export function createWatcher({ onChange, onGone, onIdle, changed }) {
  const followed = new Map();   // image_id -> last record seen (or {status})
  const differs = changed || ((before, after) => before.status !== after.status);
  let timer = null;
  let delay = 0;

  function schedule() {
    if (timer || !followed.size) return;
    if (document.hidden) {
      document.addEventListener("visibilitychange", schedule, { once: true });
      return;
    }
    timer = setTimeout(round, delay);
  }

  async function one(imageId) {
    try {
      const record = await api("GET", imagePath(imageId));
      const before = followed.get(imageId);
      if (!before) return false;              // unwatched meanwhile
      if (isSettled(record)) followed.delete(imageId);
      else followed.set(imageId, record);
      if (!differs(before, record)) return false;
      if (onChange) onChange(record);
      return true;
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) {
        followed.delete(imageId);
        if (onGone) onGone(imageId);
        return true;
      }
      return false;                           // a network blip: the next round asks again
    }
  }

  async function round() {
    timer = null;
    const results = await Promise.all(Array.from(followed.keys()).map(one));
    delay = nextDelay(delay, results.some(Boolean));
    if (!followed.size) {
      delay = 0;
      if (onIdle) onIdle();
      return;
    }
    schedule();
  }

  return {
    /** Follow an image whose record (at least {status}) the caller has; ``justUploaded``:
        its bytes have just landed, so its answer is likely to change within moments. */
    watch(record, justUploaded) {
      if (isSettled(record)) return;
      followed.set(record.image_id, record);
      const first = justUploaded ? POLICY.JUST_UPLOADED_DELAY_MS : POLICY.FIRST_DELAY_MS;
      if (timer && delay > first) {   // a new image: look soon, not after the backoff
        clearTimeout(timer);
        timer = null;
      }
      if (!timer) delay = first;   // else a round comes sooner than first anyway
      schedule();
    },
    unwatch(imageId) {
      followed.delete(imageId);
    },
    watching(imageId) {
      return followed.has(imageId);
    }
  };
}
