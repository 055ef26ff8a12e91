/* What the uploader checks before sending a file: the type to declare and whether it may go. */

import { config } from "./config.js";
import { formatBytes } from "./words.js";

const EXTENSION_TYPES = config.extension_types || {};
const ALLOWED_TYPES = new Set(config.upload_content_types || []);
const FORMATS_WORDS = config.upload_formats_words || "images";

function extensionOf(name) {
  const dot = name.lastIndexOf(".");
  return dot < 0 ? "" : name.slice(dot + 1).toLowerCase();
}

/** The type to declare, or null when the file is not one we take. */
export function declaredType(file) {
  const type = (file.type || "").toLowerCase();
  if (ALLOWED_TYPES.has(type)) return type;
  if (!type || type === "application/octet-stream") return EXTENSION_TYPES[extensionOf(file.name)] || null;
  return null;
}

/** Why this file cannot be sent (files of at most ``limit`` bytes go), in words; null when it may go. */
export function refusal(file, limit) {
  if (!declaredType(file)) {
    return "\u201c" + file.name + "\u201d is not a supported image type. Choose " + FORMATS_WORDS + " files.";
  }
  if (file.size === 0) return "\u201c" + file.name + "\u201d is empty.";
  if (file.size > limit) {
    return "\u201c" + file.name + "\u201d is " + formatBytes(file.size) + "; the limit is " +
      formatBytes(limit) + " per file.";
  }
  return null;
}
