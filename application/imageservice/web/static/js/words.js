/* Numbers, sizes, times, statuses and rejections in words. The tables come from the server
   (config.js); the rules mirror web/pages/filters.py so both render the same words. */

import { config, wordsOf } from "./config.js";
import { ApiError } from "./api.js";

const STATUS_WORDS = wordsOf(config.statuses);
const UNKNOWN_REJECTION = "The file could not be processed.";

export function formatBytes(bytes) {
  if (typeof bytes !== "number" || !isFinite(bytes)) return "—";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let size = bytes, unit = 0;
  while (size >= 1024 && unit < units.length - 1) { size /= 1024; unit += 1; }
  if (unit === 0) return size + " B";
  return (size < 100 ? size.toFixed(1) : Math.round(size)) + " " + units[unit];
}

export function formatSpeed(bytesPerSecond) {
  if (!(bytesPerSecond > 0)) return "";
  if (bytesPerSecond >= 1024 * 1024) return (bytesPerSecond / 1048576).toFixed(1) + " MB/s";
  return Math.max(1, Math.round(bytesPerSecond / 1024)) + " KB/s";
}

/** A server message as a sentence: capital first letter, final full stop. */
export function sentence(text) {
  let clean = String(text || "").trim();
  if (!clean) return "";
  clean = clean.charAt(0).toUpperCase() + clean.slice(1);
  return /[.!?]$/.test(clean) ? clean : clean + ".";
}

export function formatNumber(n) {
  return typeof n === "number" ? n.toLocaleString() : String(n);
}

export function formatLocalTime(iso) {
  const date = new Date(iso);
  if (isNaN(date.getTime())) return iso || "";
  return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

/** "23 h 59 min 05 s", "4 min 05 s", "12 s". */
export function formatRemaining(ms) {
  const total = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(total / 3600), m = Math.floor((total % 3600) / 60), s = total % 60;
  const two = (n) => (n < 10 ? "0" : "") + n;
  if (h > 0) return h + " h " + two(m) + " min " + two(s) + " s";
  if (m > 0) return m + " min " + two(s) + " s";
  return s + " s";
}

export function statusWords(status) {
  return STATUS_WORDS.get(status) || status;
}

/** Why a record was rejected: a quarantine names the scanner's finding; other rejections read
    the processor's own message, or the code's words when it sent none. */
export function rejectionWords(error) {
  const code = (error && error.code) || "";
  const detail = String((error && error.message) || "").split(/\s+/).filter(Boolean).join(" ").replace(/\.+$/, "");
  const quarantine = (config.quarantine_words || {})[code];
  if (quarantine) return sentence(quarantine.replace("{detail}", detail || "no reason given"));
  return sentence(detail || (config.rejection_words || {})[code] || UNKNOWN_REJECTION);
}

export function isQuarantined(record) {
  return Boolean(record.error && (config.quarantine_words || {})[record.error.code]);
}

/** Any failure in words, fit to show a person. */
export function errorWords(error) {
  if (error instanceof ApiError) return sentence(error.message);
  if (error && error.name === "AbortError") return "Cancelled.";
  if (error instanceof TypeError) return "Could not reach the server. Check your connection and try again.";
  return (error && error.message) || "Something went wrong.";
}
