/* The header: the workspace's countdown and its quota use, refreshed after uploads settle. */

import { api } from "./api.js";
import { config } from "./config.js";
import { formatBytes, formatLocalTime, formatNumber, formatRemaining } from "./words.js";

let limits = { max_upload_bytes: config.max_upload_bytes };
let quotaTimer = null;

/** The limits the server last told us (from the page, then from /api/me). */
export function currentLimits() {
  return limits;
}

export function startCountdown() {
  const box = document.getElementById("workspace");
  const out = document.getElementById("countdown");
  if (!box || !out) return;
  const expires = new Date(box.dataset.expiresAt).getTime();
  if (isNaN(expires)) return;
  out.title = "Until " + formatLocalTime(box.dataset.expiresAt);
  const tick = () => {
    const left = expires - Date.now();
    if (left <= 0) {
      out.textContent = "expired — reload to start a new workspace";
      out.classList.add("expiring");
      return;
    }
    out.textContent = formatRemaining(left);
    out.classList.toggle("expiring", left < 3600 * 1000);
    setTimeout(tick, 1000 - (Date.now() % 1000) + 5);
  };
  tick();
}

function renderQuota(usage) {
  const box = document.getElementById("workspace");
  const text = document.getElementById("quota-text");
  const meter = document.getElementById("quota-meter");
  if (!box || !text) return;
  text.textContent = formatNumber(usage.images) + " of " + formatNumber(usage.quota_images) + " images · " +
    formatBytes(usage.bytes) + " of " + formatBytes(usage.quota_bytes);
  if (meter) {
    meter.max = usage.quota_bytes;
    meter.value = usage.bytes;
    meter.textContent = formatBytes(usage.bytes);
  }
  box.dataset.images = usage.images;
  box.dataset.bytes = usage.bytes;
}

/** Re-read usage and limits from /api/me (debounced: many uploads finish together). */
export function refreshQuota() {
  clearTimeout(quotaTimer);
  quotaTimer = setTimeout(() => {
    api("GET", "/api/me").then((me) => {
      renderQuota(me.usage);
      limits = Object.assign({}, limits, me.limits);
    }).catch(() => { /* the header keeps its last numbers */ });
  }, 250);
}
