/* What the server owns (formats, fits, watermark positions, status and rejection words, limits),
   read once from the page's imageservice-config meta tag: one source with the templates. */

function read() {
  const meta = document.querySelector('meta[name="imageservice-config"]');
  try {
    return meta ? JSON.parse(meta.getAttribute("content")) : {};
  } catch (e) {
    return {};
  }
}

export const config = Object.freeze(read());

/** [[value, words], ...] as a lookup. */
export function wordsOf(pairs) {
  return new Map(pairs || []);
}
